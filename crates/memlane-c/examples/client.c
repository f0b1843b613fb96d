/*
 * The classic file-mapping client, in C: opens the segment NAME read-only
 * by name, waits up to TIMEOUT_MS for the event NAME.ready ("data ready"),
 * and prints the text in the segment's first 1024 bytes, or "no message"
 * when they are empty.
 *
 *     client [NAME] [TIMEOUT_MS]   (defaults: memlane-classic, 5000)
 *
 * Exit status: 0 when it read the segment (message or not), 1 when the
 * mapping or the event cannot be opened, 2 for bad arguments.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "memlane.h"

#define SLOT_SIZE 1024u

int main(int argc, char **argv) {
    const char *name = argc > 1 ? argv[1] : "memlane-classic";
    uint64_t timeout_ms = 5000;
    if (argc > 2) {
        char *end;
        timeout_ms = strtoull(argv[2], &end, 10);
        if (*argv[2] == '\0' || *end != '\0' || argc > 3) {
            fprintf(stderr, "usage: client [NAME] [TIMEOUT_MS]\n");
            return 2;
        }
    }
    char ready_name[256];
    if (snprintf(ready_name, sizeof ready_name, "%s.ready", name) >= (int)sizeof ready_name) {
        fprintf(stderr, "client: the name is too long\n");
        return 2;
    }

    int rc = 1;
    memlane_segment *seg = NULL;
    memlane_event *ready = NULL;
    memlane_status st;

    if ((st = memlane_segment_open(NULL, name, MEMLANE_ACCESS_READ_ONLY, &seg)) != MEMLANE_OK) {
        fprintf(stderr, "client: could not open the mapping '%s' (%s): %s\n", name,
                memlane_status_name(st), memlane_last_error_message());
        goto out;
    }
    if ((st = memlane_event_open(NULL, ready_name, &ready)) != MEMLANE_OK) {
        fprintf(stderr, "client: could not open the event '%s' (%s): %s\n", ready_name,
                memlane_status_name(st), memlane_last_error_message());
        goto out;
    }
    st = memlane_event_wait(ready, timeout_ms);
    if (st == MEMLANE_TIMEOUT) {
        fprintf(stderr, "client: no 'data ready' signal within %llu ms; reading anyway\n",
                (unsigned long long)timeout_ms);
    } else if (st != MEMLANE_OK) {
        fprintf(stderr, "client: waiting failed: %s\n", memlane_last_error_message());
        goto out;
    }

    /* The bytes in place: valid until memlane_segment_close. Another
     * process may write them at any time, so copy them out first. */
    const uint8_t *data = NULL;
    size_t len = 0;
    if ((st = memlane_segment_data(seg, &data, &len)) != MEMLANE_OK) {
        fprintf(stderr, "client: %s\n", memlane_last_error_message());
        goto out;
    }
    char text[SLOT_SIZE + 1];
    size_t n = len < SLOT_SIZE ? len : SLOT_SIZE;
    memcpy(text, data, n);
    text[n] = '\0';
    if (text[0] == '\0') {
        printf("no message\n");
    } else {
        printf("message: %s\n", text);
    }
    rc = 0;

out:
    memlane_event_close(ready);
    memlane_segment_close(seg);
    return rc;
}
