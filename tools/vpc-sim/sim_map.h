/* vpc-sim: string-keyed hash map to 32-bit values (open addressing, keys borrowed). */
#ifndef CLW_SIM_MAP_H
#define CLW_SIM_MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One slot; key NULL means empty. Keys are borrowed: the caller keeps them alive and unchanged
 * while they are in the map. There is no removal: maps are rebuilt from scratch instead. */
struct clw_sim_map_slot {
    const char *key;
    uint32_t hash;
    uint32_t value;
};

struct clw_sim_map {
    struct clw_sim_map_slot *slots;
    size_t cap; /* power of two, or 0 */
    size_t count;
};

/* Inserts or replaces key. O(1) expected; grows at 50% load. Returns 0, or -1 on allocation
 * failure (the map is unchanged then). */
int clw_sim_map_put(struct clw_sim_map *map, const char *key, uint32_t value);

/* Looks key up; on a hit stores its value in *value (if not NULL) and returns true. */
bool clw_sim_map_get(const struct clw_sim_map *map, const char *key, uint32_t *value);

/* Forgets every key but keeps the allocated slots. */
void clw_sim_map_clear(struct clw_sim_map *map);

void clw_sim_map_free(struct clw_sim_map *map);

/* The hash the map uses (FNV-1a, 32 bits); exported for the stats counters. */
uint32_t clw_sim_map_hash(const char *key);

#endif
