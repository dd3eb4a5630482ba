/*
 * machine.c - lookups over the machine model (pure C).
 */
#include <string.h>

#include "planner/machine.h"

int plan_model_find(const plan_model *m, const char *id)
{
    for (int i = 0; i < m->nloc; i++)
        if (strcmp(m->loc[i].id, id) == 0)
            return i;
    return -1;
}

double plan_calib_peak_bw(const plan_calib *c)
{
    double best = 0;
    for (int i = 0; i < c->nbw; i++)
        if (c->bw_gbs[i] > best)
            best = c->bw_gbs[i];
    return best;
}

double plan_calib_bw_at(const plan_calib *c, int threads)
{
    if (c->nbw == 0)
        return 0;
    if (threads <= c->bw_threads[0])
        return c->bw_gbs[0];
    for (int i = 1; i < c->nbw; i++) {
        if (threads <= c->bw_threads[i]) {
            double f = (double)(threads - c->bw_threads[i - 1]) /
                       (double)(c->bw_threads[i] - c->bw_threads[i - 1]);
            return c->bw_gbs[i - 1] + f * (c->bw_gbs[i] - c->bw_gbs[i - 1]);
        }
    }
    return c->bw_gbs[c->nbw - 1];
}
