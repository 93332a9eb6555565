/* Intrusive doubly linked lists: push at either end, remove from anywhere, in O(1). */
#include "clw/dlist.h"

void clw_dlist_push(struct clw_dlist *l, struct clw_dlink *n, int front)
{
    n->prev = n->next = NULL;
    if (l->head == NULL) {
        l->head = l->tail = n;
    } else if (front) {
        n->next = l->head;
        l->head->prev = n;
        l->head = n;
    } else {
        n->prev = l->tail;
        l->tail->next = n;
        l->tail = n;
    }
    l->len++;
}

void clw_dlist_remove(struct clw_dlist *l, struct clw_dlink *n)
{
    if (n->prev != NULL)
        n->prev->next = n->next;
    else
        l->head = n->next;
    if (n->next != NULL)
        n->next->prev = n->prev;
    else
        l->tail = n->prev;
    n->prev = n->next = NULL;
    l->len--;
}
