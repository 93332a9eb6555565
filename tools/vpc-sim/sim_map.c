/* vpc-sim: string-keyed hash map to 32-bit values (open addressing with linear probing). */
#include "sim_map.h"

#include <stdlib.h>
#include <string.h>

uint32_t clw_sim_map_hash(const char *key)
{
    uint32_t h = 2166136261u;

    for (const unsigned char *p = (const unsigned char *)key; *p != '\0'; p++) {
        h ^= *p;
        h *= 16777619u;
    }
    return h;
}

/* Index of key's slot, or of the empty slot where it would go. cap must be non-zero. */
static size_t find_slot(const struct clw_sim_map_slot *slots, size_t cap, const char *key,
                        uint32_t hash)
{
    size_t mask = cap - 1;
    size_t i = hash & mask;

    while (slots[i].key != NULL && (slots[i].hash != hash || strcmp(slots[i].key, key) != 0))
        i = (i + 1) & mask;
    return i;
}

static int grow(struct clw_sim_map *map)
{
    size_t cap = map->cap == 0 ? 64 : map->cap * 2;
    struct clw_sim_map_slot *slots = calloc(cap, sizeof(*slots));

    if (slots == NULL)
        return -1;
    for (size_t i = 0; i < map->cap; i++) {
        if (map->slots[i].key != NULL)
            slots[find_slot(slots, cap, map->slots[i].key, map->slots[i].hash)] = map->slots[i];
    }
    free(map->slots);
    map->slots = slots;
    map->cap = cap;
    return 0;
}

int clw_sim_map_put(struct clw_sim_map *map, const char *key, uint32_t value)
{
    uint32_t hash = clw_sim_map_hash(key);
    size_t i;

    if ((map->count + 1) * 2 > map->cap && grow(map) != 0)
        return -1;
    i = find_slot(map->slots, map->cap, key, hash);
    if (map->slots[i].key == NULL) {
        map->slots[i].key = key;
        map->slots[i].hash = hash;
        map->count++;
    }
    map->slots[i].value = value;
    return 0;
}

bool clw_sim_map_get(const struct clw_sim_map *map, const char *key, uint32_t *value)
{
    size_t i;

    if (map->cap == 0)
        return false;
    i = find_slot(map->slots, map->cap, key, clw_sim_map_hash(key));
    if (map->slots[i].key == NULL)
        return false;
    if (value != NULL)
        *value = map->slots[i].value;
    return true;
}

void clw_sim_map_clear(struct clw_sim_map *map)
{
    if (map->slots != NULL)
        memset(map->slots, 0, map->cap * sizeof(*map->slots));
    map->count = 0;
}

void clw_sim_map_free(struct clw_sim_map *map)
{
    free(map->slots);
    map->slots = NULL;
    map->cap = 0;
    map->count = 0;
}
