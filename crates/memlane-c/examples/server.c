/*
 * The classic file-mapping server, in C: creates a named 1,000,000-byte
 * segment, writes a text message into its first 1024 bytes, flushes it,
 * signals the event NAME.ready ("data ready"), then waits for Enter (or
 * the end of standard input) and removes both names.
 *
 *     server [NAME] [TEXT]         (defaults: memlane-classic, a greeting)
 *
 * Build (see docs/BINDINGS.md):
 *     cargo build --release -p memlane-c
 *     cc -Icrates/memlane-c/include crates/memlane-c/examples/server.c \
 *        -Ltarget/release -lmemlane_c -Wl,-rpath,$PWD/target/release -o server
 */
#include <stdio.h>
#include <string.h>

#include "memlane.h"

#define SEGMENT_SIZE 1000000u
#define SLOT_SIZE 1024u

static int fail(const char *what, memlane_status status) {
    fprintf(stderr, "server: %s failed (%s): %s\n", what, memlane_status_name(status),
            memlane_last_error_message());
    return 1;
}

int main(int argc, char **argv) {
    const char *name = argc > 1 ? argv[1] : "memlane-classic";
    const char *text = argc > 2 ? argv[2] : "Message from the memlane server.";
    size_t len = strlen(text);
    if (argc > 3) {
        fprintf(stderr, "usage: server [NAME] [TEXT]\n");
        return 2;
    }
    if (len >= SLOT_SIZE) {
        fprintf(stderr, "server: the message is %zu bytes; it must fit in %u bytes with its NUL\n",
                len, SLOT_SIZE);
        return 2;
    }
    char ready_name[256];
    if (snprintf(ready_name, sizeof ready_name, "%s.ready", name) >= (int)sizeof ready_name) {
        fprintf(stderr, "server: the name is too long\n");
        return 2;
    }

    int rc = 1;
    memlane_segment *seg = NULL;
    memlane_event *ready = NULL;
    memlane_status st;

    /* NULL directory: $MEMLANE_DIR, else /dev/shm. */
    if ((st = memlane_segment_create(NULL, name, SEGMENT_SIZE, &seg)) != MEMLANE_OK) {
        rc = fail("creating the segment", st);
        goto out;
    }
    if ((st = memlane_event_create(NULL, ready_name, &ready)) != MEMLANE_OK) {
        rc = fail("creating the event", st);
        memlane_remove(NULL, name);
        goto out;
    }

    /* The message with its NUL, by a bounds-checked copy (the in-place
     * pointer from memlane_segment_data_mut works as well). */
    if ((st = memlane_segment_write(seg, 0, (const uint8_t *)text, len + 1)) != MEMLANE_OK ||
        (st = memlane_segment_flush(seg)) != MEMLANE_OK ||
        (st = memlane_event_notify(ready)) != MEMLANE_OK) {
        rc = fail("publishing the message", st);
    } else {
        printf("server: wrote %zu bytes to '%s' and signalled '%s'; press Enter to remove them\n",
               len, name, ready_name);
        fflush(stdout);
        int c;
        while ((c = getchar()) != EOF && c != '\n') {
        }
        rc = 0;
    }
    memlane_remove(NULL, ready_name);
    memlane_remove(NULL, name);

out:
    memlane_event_close(ready); /* NULL is fine */
    memlane_segment_close(seg);
    return rc;
}
