/* Alarms (../shared/CLI.md "operator alarm list|disarm"; README "Storage
 * pressure"): list the alarms in this node's applied state (read on
 * sys/alarms), and disarm on the leader (sudo on sys/alarms): clear each
 * alarm whose cause is gone by the latest measurements (storage.h), keep
 * and name the others. An alarm also clears by itself once its node is back
 * under its limits; disarm is for an operator who does not want to wait,
 * or to learn why an alarm stays.
 *
 * Threads: loop thread. */
#ifndef MF_SERVER_OP_ALARMS_H
#define MF_SERVER_OP_ALARMS_H

#include "server/handler.h"

void mf_op_alarm_list(struct req *r);   /* read */
void mf_op_alarm_disarm(struct req *r); /* leader */

/* The applied alarms as API messages, for `status` too: *out (malloc'd
 * array of n pointers into one block) is freed with mf_op_alarms_free.
 * @return 0 or a storage error. */
int mf_op_alarms_read(struct mf_server *s, Mayfly__Api__AlarmInfo ***out, size_t *n);
void mf_op_alarms_free(Mayfly__Api__AlarmInfo **list, size_t n);

#endif
