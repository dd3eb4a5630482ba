/*
 * dict.c - the string dictionary behind DQO_TYPE_STR columns.
 *
 * A dictionary interns byte strings and hands out dense uint32 codes
 * 0, 1, 2, ... in order of first appearance, so a string column becomes a u32
 * column whose key range equals the number of distinct strings: exactly the
 * property the direct (perfect-hash) grouping kernels want.
 *
 * Layout:
 *  - The text lives in an arena: a chain of large blocks (64 KiB, doubling up
 *    to 4 MiB; a longer string gets a block of its own), so interning a
 *    million strings costs a few dozen allocations, not a million. Every
 *    string is stored with a NUL terminator so that dict_get can return it as
 *    C text without copying.
 *  - An entry array indexed by code holds each string's address, length and
 *    64-bit hash (the hash is kept so that growing the table never re-reads
 *    the text).
 *  - An open-addressing hash table with linear probing maps a string to its
 *    code. A slot is 8 bytes: code + 1 (0 marks an empty slot) and the upper
 *    32 bits of the hash as a tag, so a probe that meets another string almost
 *    never touches that string's entry or text. The table doubles when it
 *    would pass DICT_MAX_LOAD_PCT percent full.
 *
 * The hash works a word (8 bytes) at a time with MurmurHash3's x64 word mix
 * and its fmix64 finaliser (Austin Appleby, MurmurHash3, public domain): fast
 * on long strings, and every input bit reaches every output bit, so strings
 * sharing long prefixes still spread over the table.
 *
 * Strings are byte ranges: embedded NUL bytes are allowed and compared
 * correctly by dict_intern, but dict_get returns C text, which then ends at the
 * first embedded NUL.
 *
 * Failure: every allocation is made before anything changes, so an
 * out-of-memory return from dict_intern leaves the dictionary exactly as it
 * was.
 */
#include <stdint.h>
#include <string.h>

#include "engine/engine_int.h"

/* Grow the hash table once it would be more than this percent full. Linear
 * probing stays near one probe per lookup up to about 50-70% load (Knuth,
 * TAOCP vol. 3, 6.4: expected probes for a hit (1 + 1/(1-a))/2 = 1.5 at
 * a = 0.5, 2.2 at a = 0.7); the slots are only 8 bytes, so we take the low
 * end. */
#define DICT_MAX_LOAD_PCT 50
/* The first table: 64 slots (512 bytes). */
#define DICT_MIN_SLOTS 64
/* Arena blocks start at 64 KiB and double up to 4 MiB. */
#define DICT_BLOCK_MIN ((size_t)64 * 1024)
#define DICT_BLOCK_MAX ((size_t)4 * 1024 * 1024)

typedef struct dict_slot {
    uint32_t code1; /* code + 1; 0 marks an empty slot */
    uint32_t tag;   /* upper 32 bits of the string's hash */
} dict_slot;

typedef struct dict_entry {
    const char *text; /* NUL-terminated copy in the arena */
    size_t len;       /* bytes, not counting the terminator */
    uint64_t hash;
} dict_entry;

/* One arena block; the text follows the header. */
typedef struct dict_block {
    struct dict_block *next;
    size_t cap, used;
    /* The bytes follow, aligned as the allocator aligns. */
} dict_block;

struct dqo_dict {
    uint32_t n;          /* strings interned */
    uint32_t entry_cap;  /* entries allocated */
    dict_entry *entries; /* indexed by code */
    dict_slot *slots;
    size_t nslots;     /* a power of two */
    dict_block *block; /* the block being filled; older ones chain behind */
    size_t next_block; /* size of the next ordinary block */
};

static inline uint64_t rotl64(uint64_t x, int r)
{
    return (x << r) | (x >> (64 - r));
}

static inline uint64_t fmix64(uint64_t k)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    k *= 0xc4ceb9fe1a85ec53ULL;
    k ^= k >> 33;
    return k;
}

/* MurmurHash3 x64's per-word step applied to one lane, then its finaliser
 * over the length as well, so "" and "\0" differ. */
static uint64_t dict_hash(const char *s, size_t len)
{
    const uint64_t c1 = 0x87c37b91114253d5ULL;
    const uint64_t c2 = 0x4cf5ad432745937fULL;
    uint64_t h = 0x9e3779b97f4a7c15ULL;
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t k;
        memcpy(&k, p + i, 8);
        k *= c1;
        k = rotl64(k, 31);
        k *= c2;
        h ^= k;
        h = rotl64(h, 27) * 5 + 0x52dce729;
    }
    if (i < len) {
        uint64_t k = 0;
        memcpy(&k, p + i, len - i);
        k *= c1;
        k = rotl64(k, 31);
        k *= c2;
        h ^= k;
    }
    return fmix64(h ^ (uint64_t)len);
}

dqo_dict *dict_create(void)
{
    dqo_dict *d = mem_calloc(1, sizeof *d);
    if (d == NULL)
        goto fail;
    d->slots = mem_calloc(DICT_MIN_SLOTS, sizeof *d->slots);
    if (d->slots == NULL)
        goto fail;
    d->nslots = DICT_MIN_SLOTS;
    d->next_block = DICT_BLOCK_MIN;
    return d;
fail:
    mem_free(d);
    return NULL;
}

void dict_destroy(dqo_dict *d)
{
    if (d == NULL)
        return;
    for (dict_block *b = d->block; b != NULL;) {
        dict_block *next = b->next;
        mem_free(b);
        b = next;
    }
    mem_free(d->entries);
    mem_free(d->slots);
    mem_free(d);
}

/* Rebuilds the table at twice its size from the stored hashes. On failure
 * the old table stays in place. */
static dqo_status dict_grow_slots(dqo_dict *d)
{
    if (d->nslots > SIZE_MAX / 2 / sizeof(dict_slot))
        return DQO_ENOMEM;
    size_t nslots = d->nslots * 2;
    dict_slot *slots = mem_calloc(nslots, sizeof *slots);
    if (slots == NULL)
        return DQO_ENOMEM;
    size_t mask = nslots - 1;
    for (uint32_t c = 0; c < d->n; c++) {
        uint64_t h = d->entries[c].hash;
        size_t i = (size_t)h & mask;
        while (slots[i].code1 != 0)
            i = (i + 1) & mask;
        slots[i].code1 = c + 1;
        slots[i].tag = (uint32_t)(h >> 32);
    }
    mem_free(d->slots);
    d->slots = slots;
    d->nslots = nslots;
    return DQO_OK;
}

/* Makes room for one more entry. */
static dqo_status dict_grow_entries(dqo_dict *d)
{
    if (d->n < d->entry_cap)
        return DQO_OK;
    uint64_t cap = d->entry_cap == 0 ? 256 : (uint64_t)d->entry_cap * 2;
    if (cap > UINT32_MAX)
        cap = UINT32_MAX;
    if (cap > SIZE_MAX / sizeof(dict_entry))
        return DQO_ENOMEM;
    dict_entry *e = mem_realloc(d->entries, (size_t)cap * sizeof *e);
    if (e == NULL)
        return DQO_ENOMEM;
    d->entries = e;
    d->entry_cap = (uint32_t)cap;
    return DQO_OK;
}

/* Makes sure the current block has `need` free bytes, chaining a new block
 * in front when it has not. */
static dqo_status dict_reserve_text(dqo_dict *d, size_t need)
{
    if (d->block != NULL && d->block->cap - d->block->used >= need)
        return DQO_OK;
    size_t cap = d->next_block;
    if (need > cap)
        cap = need; /* a long string gets a block of its own */
    if (cap > SIZE_MAX - sizeof(dict_block))
        return DQO_ENOMEM;
    dict_block *b = mem_alloc(sizeof *b + cap);
    if (b == NULL)
        return DQO_ENOMEM;
    b->cap = cap;
    b->used = 0;
    /* A block for one long string goes behind the current one so that the
     * current block's free space is not abandoned. */
    if (d->block != NULL && cap > d->next_block) {
        b->next = d->block->next;
        d->block->next = b;
        return DQO_OK;
    }
    b->next = d->block;
    d->block = b;
    if (d->next_block < DICT_BLOCK_MAX)
        d->next_block *= 2;
    return DQO_OK;
}

dqo_status dict_intern(dqo_dict *d, const char *s, size_t len, uint32_t *code)
{
    if (d == NULL || code == NULL || (s == NULL && len != 0))
        return DQO_EINVAL;
    uint64_t h = dict_hash(s, len);
    uint32_t tag = (uint32_t)(h >> 32);
    size_t mask = d->nslots - 1;
    size_t i = (size_t)h & mask;
    for (; d->slots[i].code1 != 0; i = (i + 1) & mask) {
        if (d->slots[i].tag != tag)
            continue;
        const dict_entry *e = &d->entries[d->slots[i].code1 - 1];
        if (e->len == len && (len == 0 || memcmp(e->text, s, len) == 0)) {
            *code = d->slots[i].code1 - 1;
            return DQO_OK;
        }
    }

    /* A new string. Codes are u32 and code + 1 must fit a slot. */
    if (d->n >= UINT32_MAX - 1)
        return DQO_EOVERFLOW;
    if (len == SIZE_MAX)
        return DQO_ENOMEM;
    dqo_status st = dict_grow_entries(d);
    if (st != DQO_OK)
        return st;
    st = dict_reserve_text(d, len + 1);
    if (st != DQO_OK)
        return st;
    /* Grow last: the new table would not include this string yet, so we
     * probe again for its slot afterwards. */
    if (((uint64_t)d->n + 1) * 100 > (uint64_t)d->nslots * DICT_MAX_LOAD_PCT) {
        st = dict_grow_slots(d);
        if (st != DQO_OK)
            return st;
        mask = d->nslots - 1;
        i = (size_t)h & mask;
        while (d->slots[i].code1 != 0)
            i = (i + 1) & mask;
    }

    /* The text goes into the block with room: the head block, or the one
     * chained right behind it for an oversized string. */
    dict_block *b = d->block;
    if (b->cap - b->used < len + 1)
        b = b->next;
    char *text = (char *)(b + 1) + b->used;
    if (len != 0)
        memcpy(text, s, len);
    text[len] = '\0';
    b->used += len + 1;

    uint32_t c = d->n++;
    d->entries[c].text = text;
    d->entries[c].len = len;
    d->entries[c].hash = h;
    d->slots[i].code1 = c + 1;
    d->slots[i].tag = tag;
    *code = c;
    return DQO_OK;
}

const char *dict_get(const dqo_dict *d, uint32_t code)
{
    if (d == NULL || code >= d->n)
        return NULL;
    return d->entries[code].text;
}

uint32_t dict_size(const dqo_dict *d)
{
    return d == NULL ? 0 : d->n;
}
