/* Intrusive doubly linked lists: a link embedded in the listed object, a list that knows its
 * ends and length. Never allocates. The object owning a link is found with CLW_DLIST_ITEM. */
#ifndef CLW_DLIST_H
#define CLW_DLIST_H

#include <stddef.h>

struct clw_dlink {
    struct clw_dlink *prev, *next;
};

struct clw_dlist {
    struct clw_dlink *head, *tail;
    size_t len;
};

/* The object of type holding link at member (link must not be NULL). */
#define CLW_DLIST_OF(link, type, member) ((type *)(void *)((char *)(link)-offsetof(type, member)))

/* The object of type holding link at member (link may be NULL: then NULL). */
#define CLW_DLIST_ITEM(link, type, member)                                                         \
    ((link) != NULL ? CLW_DLIST_OF(link, type, member) : (type *)NULL)

/* Links n at the front (front != 0) or the back of l. n must be in no list. */
void clw_dlist_push(struct clw_dlist *l, struct clw_dlink *n, int front);
/* Unlinks n, which must be in l. */
void clw_dlist_remove(struct clw_dlist *l, struct clw_dlink *n);

#endif
