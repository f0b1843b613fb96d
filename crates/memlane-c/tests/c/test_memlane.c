/*
 * The C test program of memlane's C API: every function, bad input (NULL
 * pointers, names that are not UTF-8 or do not exist, the wrong kind,
 * messages too large, buffers too small) giving status codes, and two
 * processes (fork) exchanging data through a segment, events and a
 * channel. Built with the system C compiler against the static and the
 * shared library by tests/c.rs; runnable by hand:
 *
 *     MEMLANE_DIR=$(mktemp -d) ./test_memlane
 *
 * Prints one line per failed check and "N passed, M failed"; exits 1 if
 * any check failed. Every name it makes starts with "ct<pid>-" and is
 * removed at the end.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "memlane.h"

static int passed, failed;

#define CHECK(cond)                                                                     \
    do {                                                                                \
        if (cond) {                                                                     \
            passed++;                                                                   \
        } else {                                                                        \
            failed++;                                                                   \
            fprintf(stderr, "FAILED %s:%d: %s (last error: %s)\n", __FILE__, __LINE__, #cond, \
                    memlane_last_error_message());                                      \
        }                                                                               \
    } while (0)

/* A call that must return `want`. */
#define EXPECT(want, call)                                                              \
    do {                                                                                \
        memlane_status got_ = (call);                                                   \
        if (got_ == (want)) {                                                           \
            passed++;                                                                   \
        } else {                                                                        \
            failed++;                                                                   \
            fprintf(stderr, "FAILED %s:%d: %s returned %s, expected %s (last error: %s)\n", \
                    __FILE__, __LINE__, #call, memlane_status_name(got_),               \
                    memlane_status_name(want), memlane_last_error_message());           \
        }                                                                               \
    } while (0)

#define OK(call) EXPECT(MEMLANE_OK, call)

static char names[16][64];
static int n_names;

/* A name unique to this run ("ct<pid>-<what>"), removed at the end. */
static const char *name(const char *what) {
    char *n = names[n_names++];
    snprintf(n, sizeof names[0], "ct%ld-%s", (long)getpid(), what);
    return n;
}

static void test_status_and_errors(void) {
    CHECK(strcmp(memlane_status_name(MEMLANE_OK), "MEMLANE_OK") == 0);
    CHECK(strcmp(memlane_status_name(MEMLANE_TOO_LARGE), "MEMLANE_TOO_LARGE") == 0);
    CHECK(memlane_last_error_message() != NULL);
}

static void test_null_pointers(void) {
    memlane_segment *seg = (memlane_segment *)1;
    EXPECT(MEMLANE_NULL_POINTER, memlane_segment_create(NULL, NULL, 4096, &seg));
    CHECK(seg == NULL); /* *out is NULL on failure */
    CHECK(strstr(memlane_last_error_message(), "name") != NULL);
    EXPECT(MEMLANE_NULL_POINTER, memlane_segment_create(NULL, "x", 4096, NULL));
    EXPECT(MEMLANE_NULL_POINTER, memlane_segment_open(NULL, NULL, MEMLANE_ACCESS_READ_ONLY, &seg));
    EXPECT(MEMLANE_NULL_POINTER, memlane_segment_open_path(NULL, MEMLANE_ACCESS_READ_ONLY, &seg));
    EXPECT(MEMLANE_NULL_POINTER, memlane_segment_data(NULL, NULL, NULL));
    EXPECT(MEMLANE_NULL_POINTER, memlane_segment_data_mut(NULL, NULL, NULL));
    EXPECT(MEMLANE_NULL_POINTER, memlane_segment_read(NULL, 0, NULL, 0));
    EXPECT(MEMLANE_NULL_POINTER, memlane_segment_write(NULL, 0, NULL, 0));
    EXPECT(MEMLANE_NULL_POINTER, memlane_segment_flush(NULL));
    EXPECT(MEMLANE_NULL_POINTER, memlane_event_create(NULL, NULL, NULL));
    EXPECT(MEMLANE_NULL_POINTER, memlane_event_notify(NULL));
    EXPECT(MEMLANE_NULL_POINTER, memlane_event_wait(NULL, 0));
    EXPECT(MEMLANE_NULL_POINTER, memlane_latest_set(NULL, (const uint8_t *)"x", 1, NULL));
    EXPECT(MEMLANE_NULL_POINTER, memlane_latest_get(NULL, NULL, 0, NULL, NULL));
    EXPECT(MEMLANE_NULL_POINTER, memlane_latest_wait(NULL, 0));
    EXPECT(MEMLANE_NULL_POINTER, memlane_latest_max_value(NULL, NULL));
    EXPECT(MEMLANE_NULL_POINTER, memlane_channel_open(NULL, NULL, NULL));
    EXPECT(MEMLANE_NULL_POINTER, memlane_channel_info(NULL, NULL, NULL));
    memlane_publisher *pub = (memlane_publisher *)1;
    EXPECT(MEMLANE_NULL_POINTER, memlane_publisher_new(NULL, &pub));
    CHECK(pub == NULL);
    EXPECT(MEMLANE_NULL_POINTER, memlane_publisher_send(NULL, NULL, 0, 0));
    EXPECT(MEMLANE_NULL_POINTER, memlane_publisher_loan(NULL, 1, 0, NULL));
    EXPECT(MEMLANE_NULL_POINTER, memlane_publisher_commit(NULL, 0));
    EXPECT(MEMLANE_NULL_POINTER, memlane_publisher_discard(NULL));
    EXPECT(MEMLANE_NULL_POINTER, memlane_subscriber_new(NULL, 0, NULL));
    EXPECT(MEMLANE_NULL_POINTER, memlane_subscriber_recv(NULL, NULL, 0, NULL, 0));
    EXPECT(MEMLANE_NULL_POINTER, memlane_subscriber_read(NULL, NULL, NULL, 0));
    EXPECT(MEMLANE_NULL_POINTER, memlane_subscriber_release(NULL));
    EXPECT(MEMLANE_NULL_POINTER, memlane_remove(NULL, NULL));
    /* Closing NULL is a no-op. */
    memlane_segment_close(NULL);
    memlane_event_close(NULL);
    memlane_latest_close(NULL);
    memlane_channel_close(NULL);
    memlane_publisher_close(NULL);
    memlane_subscriber_close(NULL);
}

static void test_bad_names(void) {
    memlane_segment *seg = NULL;
    EXPECT(MEMLANE_INVALID_NAME, memlane_segment_create(NULL, "\xff\xfe", 4096, &seg));
    CHECK(strstr(memlane_last_error_message(), "UTF-8") != NULL);
    EXPECT(MEMLANE_INVALID_NAME, memlane_segment_create(NULL, "bad/name", 4096, &seg));
    EXPECT(MEMLANE_INVALID_NAME, memlane_segment_create(NULL, "", 4096, &seg));
    EXPECT(MEMLANE_INVALID_NAME, memlane_event_open(NULL, "\xc3\x28", (memlane_event **)&seg));
    EXPECT(MEMLANE_INVALID_NAME, memlane_remove(NULL, "-dash"));
    EXPECT(MEMLANE_INVALID_NAME, memlane_segment_create("\xff", "ok", 4096, &seg));
    CHECK(seg == NULL);
}

static void test_missing_names(void) {
    const char *missing = name("missing");
    memlane_segment *seg = NULL;
    memlane_event *ev = NULL;
    memlane_latest *l = NULL;
    memlane_channel *ch = NULL;
    EXPECT(MEMLANE_NOT_FOUND, memlane_segment_open(NULL, missing, MEMLANE_ACCESS_READ_ONLY, &seg));
    CHECK(strstr(memlane_last_error_message(), missing) != NULL);
    CHECK(seg == NULL);
    EXPECT(MEMLANE_NOT_FOUND, memlane_event_open(NULL, missing, &ev));
    EXPECT(MEMLANE_NOT_FOUND, memlane_latest_open(NULL, missing, &l));
    EXPECT(MEMLANE_NOT_FOUND, memlane_channel_open(NULL, missing, &ch));
    EXPECT(MEMLANE_NOT_FOUND, memlane_remove(NULL, missing));
    EXPECT(MEMLANE_NOT_FOUND,
           memlane_segment_open_path("/nonexistent/memlane-c-test", MEMLANE_ACCESS_READ_ONLY, &seg));
    EXPECT(MEMLANE_NOT_FOUND, memlane_segment_create("/nonexistent/dir", missing, 4096, &seg));
}

static void test_segment(void) {
    const char *n = name("seg");
    memlane_segment *seg = NULL, *ro = NULL, *cow = NULL, *view = NULL, *dup = NULL;
    OK(memlane_segment_create(NULL, n, 1000000, &seg));
    CHECK(seg != NULL);
    EXPECT(MEMLANE_ALREADY_EXISTS, memlane_segment_create(NULL, n, 1000000, &dup));
    CHECK(dup == NULL);
    EXPECT(MEMLANE_INVALID_ARGUMENT, memlane_segment_open(NULL, n, 7, &dup));

    const uint8_t *data = NULL;
    size_t len = 0;
    OK(memlane_segment_data(seg, &data, &len));
    CHECK(data != NULL && len == 1000000);
    uint8_t *wdata = NULL;
    OK(memlane_segment_data_mut(seg, &wdata, NULL));
    CHECK(wdata == data);
    memcpy(wdata + 4096, "in place", 8); /* written through the pointer */
    OK(memlane_segment_write(seg, 0, (const uint8_t *)"hello", 5));
    uint8_t buf[16] = {0};
    OK(memlane_segment_read(seg, 4096, buf, 8));
    CHECK(memcmp(buf, "in place", 8) == 0);
    EXPECT(MEMLANE_OUT_OF_BOUNDS, memlane_segment_read(seg, 999999, buf, 2));
    EXPECT(MEMLANE_OUT_OF_BOUNDS, memlane_segment_write(seg, 1000000, (const uint8_t *)"x", 1));
    EXPECT(MEMLANE_NULL_POINTER, memlane_segment_read(seg, 0, NULL, 4));
    OK(memlane_segment_read(seg, 0, NULL, 0)); /* nothing to copy: NULL is fine */
    OK(memlane_segment_flush(seg));

    OK(memlane_segment_open(NULL, n, MEMLANE_ACCESS_READ_ONLY, &ro));
    OK(memlane_segment_read(ro, 0, buf, 5));
    CHECK(memcmp(buf, "hello", 5) == 0);
    EXPECT(MEMLANE_READ_ONLY, memlane_segment_write(ro, 0, (const uint8_t *)"x", 1));
    wdata = (uint8_t *)1;
    EXPECT(MEMLANE_READ_ONLY, memlane_segment_data_mut(ro, &wdata, NULL));
    CHECK(wdata == (uint8_t *)1); /* untouched on failure */
    OK(memlane_segment_data(ro, &data, &len));
    CHECK(len == 1000000 && memcmp(data, "hello", 5) == 0);

    OK(memlane_segment_open(NULL, n, MEMLANE_ACCESS_COPY_ON_WRITE, &cow));
    OK(memlane_segment_write(cow, 0, (const uint8_t *)"local", 5));
    OK(memlane_segment_read(cow, 0, buf, 5));
    CHECK(memcmp(buf, "local", 5) == 0);
    OK(memlane_segment_read(ro, 0, buf, 5));
    CHECK(memcmp(buf, "hello", 5) == 0); /* others never see it */

    OK(memlane_segment_open_view(NULL, n, MEMLANE_ACCESS_READ_ONLY, 4096, 8192, &view));
    OK(memlane_segment_data(view, &data, &len));
    CHECK(len == 8192 && memcmp(data, "in place", 8) == 0);
    EXPECT(MEMLANE_OUT_OF_BOUNDS,
           memlane_segment_open_view(NULL, n, MEMLANE_ACCESS_READ_ONLY, 999000, 8192, &dup));

    /* The wrong kind: a segment is not an event, a channel or a slot. */
    memlane_event *ev = NULL;
    memlane_channel *ch = NULL;
    memlane_latest *l = NULL;
    EXPECT(MEMLANE_WRONG_KIND, memlane_event_open(NULL, n, &ev));
    EXPECT(MEMLANE_WRONG_KIND, memlane_channel_open(NULL, n, &ch));
    EXPECT(MEMLANE_WRONG_KIND, memlane_latest_open(NULL, n, &l));

    memlane_segment_close(view);
    memlane_segment_close(cow);
    memlane_segment_close(ro);
    memlane_segment_close(seg);
    OK(memlane_remove(NULL, n));
}

static void test_file_backed_segment(void) {
    const char *dir = getenv("MEMLANE_DIR");
    if (dir == NULL) {
        dir = "/tmp";
    }
    const char *n = name("file");
    char path[512];
    snprintf(path, sizeof path, "%s/%s.bin", dir, n);
    memlane_segment *seg = NULL, *again = NULL;
    EXPECT(MEMLANE_INVALID_ARGUMENT, memlane_segment_create_file(NULL, n, 4096, path, 9, &seg));
    OK(memlane_segment_create_file(NULL, n, 4096, path, MEMLANE_DISPOSITION_CREATE_NEW, &seg));
    OK(memlane_segment_write(seg, 100, (const uint8_t *)"on disk", 7));
    OK(memlane_segment_flush(seg));
    memlane_segment_close(seg);
    OK(memlane_segment_open_path(path, MEMLANE_ACCESS_READ_ONLY, &again));
    uint8_t buf[8] = {0};
    OK(memlane_segment_read(again, 100, buf, 7));
    CHECK(memcmp(buf, "on disk", 7) == 0);
    memlane_segment_close(again);
    OK(memlane_remove(NULL, n));
    CHECK(unlink(path) == 0); /* the name is gone; the file stays until removed */
}

static void test_page_file_segment(void) {
    const char *n = name("pagefile");
    memlane_segment *seg = NULL, *peer = NULL;
    EXPECT(MEMLANE_NULL_POINTER, memlane_segment_create_page_file(NULL, 4096, &seg));
    OK(memlane_segment_create_page_file(n, 4096, &seg));
    OK(memlane_segment_write(seg, 0, (const uint8_t *)"paged", 5));
    OK(memlane_segment_open(NULL, n, MEMLANE_ACCESS_READ_ONLY, &peer));
    uint8_t buf[5];
    OK(memlane_segment_read(peer, 0, buf, 5));
    CHECK(memcmp(buf, "paged", 5) == 0);
    memlane_segment_close(peer);
    memlane_segment_close(seg);
    OK(memlane_remove(NULL, n)); /* on Linux it is a file in the directory */
}

static void test_event(void) {
    const char *n = name("ev");
    memlane_event *ev = NULL, *peer = NULL;
    OK(memlane_event_create(NULL, n, &ev));
    EXPECT(MEMLANE_ALREADY_EXISTS, memlane_event_create(NULL, n, &peer));
    OK(memlane_event_open(NULL, n, &peer));
    EXPECT(MEMLANE_TIMEOUT, memlane_event_wait(peer, 0));
    EXPECT(MEMLANE_TIMEOUT, memlane_event_wait(peer, 10));
    OK(memlane_event_notify(ev));
    OK(memlane_event_wait(peer, 0));
    EXPECT(MEMLANE_TIMEOUT, memlane_event_wait(peer, 0)); /* seen */
    OK(memlane_event_notify(ev));
    OK(memlane_event_wait(peer, MEMLANE_FOREVER));
    memlane_segment *seg = NULL;
    EXPECT(MEMLANE_WRONG_KIND, memlane_segment_open(NULL, n, MEMLANE_ACCESS_READ_ONLY, &seg));
    memlane_event_close(peer);
    memlane_event_close(ev);
    OK(memlane_remove(NULL, n));
}

static void test_latest(void) {
    const char *n = name("latest");
    memlane_latest *w = NULL, *r = NULL;
    OK(memlane_latest_create(NULL, n, 64, &w));
    OK(memlane_latest_open(NULL, n, &r));
    size_t max = 0;
    OK(memlane_latest_max_value(r, &max));
    CHECK(max == 64);
    uint8_t buf[64];
    size_t len = 99;
    uint64_t version = 0;
    EXPECT(MEMLANE_EMPTY, memlane_latest_get(r, buf, sizeof buf, &len, &version));
    CHECK(len == 0);
    EXPECT(MEMLANE_TIMEOUT, memlane_latest_wait(r, 0));
    OK(memlane_latest_set(w, (const uint8_t *)"x=1", 3, &version));
    CHECK(version == 1);
    OK(memlane_latest_set(w, (const uint8_t *)"x=1.5", 5, NULL));
    OK(memlane_latest_wait(r, 0));
    OK(memlane_latest_get(r, buf, sizeof buf, &len, &version));
    CHECK(len == 5 && version == 2 && memcmp(buf, "x=1.5", 5) == 0);
    EXPECT(MEMLANE_TIMEOUT, memlane_latest_wait(r, 10));
    EXPECT(MEMLANE_BUFFER_TOO_SMALL, memlane_latest_get(r, buf, 2, &len, NULL));
    CHECK(len == 5);
    uint8_t big[65] = {0};
    EXPECT(MEMLANE_TOO_LARGE, memlane_latest_set(w, big, sizeof big, NULL));
    EXPECT(MEMLANE_NULL_POINTER, memlane_latest_set(w, NULL, 3, NULL));
    EXPECT(MEMLANE_NULL_POINTER, memlane_latest_get(r, buf, sizeof buf, NULL, NULL));
    memlane_latest_close(r);
    memlane_latest_close(w);
    OK(memlane_remove(NULL, n));
}

static void test_channel(void) {
    const char *n = name("chan");
    memlane_channel *ch = NULL, *opened = NULL;
    EXPECT(MEMLANE_INVALID_ARGUMENT, memlane_channel_create(NULL, n, 1000, 0, 0, 0, &ch));
    OK(memlane_channel_create(NULL, n, 64 * 1024, 1024, 2, 2, &ch));
    OK(memlane_channel_open(NULL, n, &opened));
    size_t max = 0;
    int copies = -1;
    OK(memlane_channel_info(opened, &max, &copies));
    CHECK(max == 1024 && copies == 0);

    memlane_subscriber *sub = NULL;
    memlane_publisher *pub = NULL;
    OK(memlane_subscriber_new(opened, 0, &sub));
    OK(memlane_publisher_new(ch, &pub));
    memlane_channel_close(opened); /* endpoints outlive their channel handle */

    uint8_t buf[2048];
    size_t len = 0;
    EXPECT(MEMLANE_TIMEOUT, memlane_subscriber_recv(sub, buf, sizeof buf, &len, 0));
    OK(memlane_publisher_send(pub, (const uint8_t *)"hello", 5, MEMLANE_FOREVER));
    OK(memlane_subscriber_recv(sub, buf, sizeof buf, &len, 1000));
    CHECK(len == 5 && memcmp(buf, "hello", 5) == 0);
    EXPECT(MEMLANE_TIMEOUT, memlane_subscriber_recv(sub, buf, sizeof buf, &len, 10));

    /* A message too large for the channel. */
    memset(buf, 'z', sizeof buf);
    EXPECT(MEMLANE_TOO_LARGE, memlane_publisher_send(pub, buf, 1025, 0));
    CHECK(strstr(memlane_last_error_message(), "1025") != NULL);
    EXPECT(MEMLANE_NULL_POINTER, memlane_publisher_send(pub, NULL, 5, 0));
    OK(memlane_publisher_send(pub, NULL, 0, 0)); /* an empty message */
    OK(memlane_subscriber_recv(sub, buf, sizeof buf, &len, 1000));
    CHECK(len == 0);

    /* A loan, filled in place and committed. */
    uint8_t *loan = NULL;
    OK(memlane_publisher_loan(pub, 16, 1, &loan));
    CHECK(loan != NULL);
    EXPECT(MEMLANE_BUSY, memlane_publisher_send(pub, (const uint8_t *)"x", 1, 0));
    EXPECT(MEMLANE_BUSY, memlane_publisher_loan(pub, 1, 0, &loan));
    memcpy(loan, "world", 5);
    EXPECT(MEMLANE_TOO_LARGE, memlane_publisher_commit(pub, 17)); /* ends the loan */
    EXPECT(MEMLANE_INVALID_ARGUMENT, memlane_publisher_commit(pub, 5));
    OK(memlane_publisher_loan(pub, 16, 0, &loan));
    memcpy(loan, "world", 5);
    OK(memlane_publisher_commit(pub, 5));
    OK(memlane_publisher_loan(pub, 8, 0, &loan));
    OK(memlane_publisher_discard(pub)); /* never delivered */
    EXPECT(MEMLANE_INVALID_ARGUMENT, memlane_publisher_discard(pub));
    EXPECT(MEMLANE_TOO_LARGE, memlane_publisher_loan(pub, 1025, 0, &loan));

    /* An in-place read, held until released. */
    const uint8_t *data = NULL;
    OK(memlane_subscriber_read(sub, &data, &len, 1000));
    CHECK(len == 5 && memcmp(data, "world", 5) == 0);
    const uint8_t *again = NULL;
    OK(memlane_subscriber_read(sub, &again, &len, 0)); /* the held one again */
    CHECK(again == data && len == 5);
    OK(memlane_subscriber_release(sub));
    EXPECT(MEMLANE_INVALID_ARGUMENT, memlane_subscriber_release(sub));
    EXPECT(MEMLANE_TIMEOUT, memlane_subscriber_read(sub, &data, &len, 0));
    EXPECT(MEMLANE_NULL_POINTER, memlane_subscriber_read(sub, NULL, &len, 0));

    /* A buffer too small keeps the message for the next receive. */
    OK(memlane_publisher_send(pub, (const uint8_t *)"0123456789", 10, 0));
    EXPECT(MEMLANE_BUFFER_TOO_SMALL, memlane_subscriber_recv(sub, buf, 4, &len, 1000));
    CHECK(len == 10);
    OK(memlane_subscriber_recv(sub, buf, sizeof buf, &len, 0));
    CHECK(len == 10 && memcmp(buf, "0123456789", 10) == 0);

    /* Slots: two publishers at most. */
    memlane_publisher *p2 = NULL, *p3 = NULL;
    OK(memlane_publisher_new(ch, &p2));
    EXPECT(MEMLANE_NO_SLOT, memlane_publisher_new(ch, &p3));
    CHECK(p3 == NULL);
    memlane_publisher_close(p2);

    /* A late subscriber from the oldest message still in the ring. */
    memlane_subscriber *old = NULL;
    OK(memlane_subscriber_new(ch, 1, &old));
    OK(memlane_subscriber_recv(old, buf, sizeof buf, &len, 1000));
    CHECK(len == 5 && memcmp(buf, "hello", 5) == 0);
    memlane_subscriber_close(old);

    /* Closing with a loan or a held message outstanding cleans up. */
    OK(memlane_publisher_send(pub, (const uint8_t *)"last", 4, 0));
    OK(memlane_subscriber_read(sub, &data, &len, 1000));
    OK(memlane_publisher_loan(pub, 4, 0, &loan));
    memlane_publisher_close(pub);
    memlane_subscriber_close(sub);
    memlane_channel_close(ch);
    OK(memlane_remove(NULL, n));
}

/* When every publisher has left: MEMLANE_DISCONNECTED after the grace. */
static void test_disconnected(void) {
    const char *n = name("gone");
    memlane_channel *ch = NULL;
    memlane_subscriber *sub = NULL;
    memlane_publisher *pub = NULL;
    const uint8_t *data = NULL;
    size_t len = 0;
    uint8_t buf[16];
    OK(memlane_channel_create(NULL, n, 0, 0, 0, 0, &ch));
    OK(memlane_subscriber_new(ch, 0, &sub));
    OK(memlane_subscriber_set_disconnect_grace(sub, 50));
    OK(memlane_publisher_new(ch, &pub));
    OK(memlane_publisher_send(pub, (const uint8_t *)"bye", 3, 0));
    memlane_publisher_close(pub);
    OK(memlane_subscriber_read(sub, &data, &len, 1000)); /* what was sent still arrives */
    CHECK(len == 3 && memcmp(data, "bye", 3) == 0);
    EXPECT(MEMLANE_BUSY, memlane_subscriber_set_disconnect_grace(sub, 50));
    OK(memlane_subscriber_release(sub));
    EXPECT(MEMLANE_DISCONNECTED, memlane_subscriber_recv(sub, buf, sizeof buf, &len, 10000));
    EXPECT(MEMLANE_NULL_POINTER, memlane_subscriber_set_disconnect_grace(NULL, 0));
    memlane_subscriber_close(sub);
    memlane_channel_close(ch);
    OK(memlane_remove(NULL, n));
}

/* A lossy subscriber never holds the publisher back: lapped, it says so
 * once (MEMLANE_LAGGED, the loss summed by memlane_subscriber_lost), then
 * receives intact messages again; a lossless one beside it gets all. */
static void test_lossy(void) {
    const char *n = name("lossy");
    memlane_channel *ch = NULL;
    memlane_subscriber *lossy = NULL, *bad = NULL;
    memlane_publisher *pub = NULL;
    uint64_t lost_messages = 1, lost_bytes = 1;
    uint8_t buf[64];
    size_t len = 0;
    OK(memlane_channel_create(NULL, n, 4096, 64, 0, 0, &ch));
    EXPECT(MEMLANE_INVALID_ARGUMENT, memlane_subscriber_new(ch, 3, &bad));
    CHECK(bad == NULL);
    OK(memlane_subscriber_new(ch, MEMLANE_SUBSCRIBE_LOSSY, &lossy));
    OK(memlane_subscriber_lost(lossy, &lost_messages, &lost_bytes));
    CHECK(lost_messages == 0 && lost_bytes == 0);
    OK(memlane_publisher_new(ch, &pub));
    /* 1,000 messages of 48 bytes (64-byte records) through a 4 KiB ring:
     * the publisher never waits (a timeout of 0 would fail if it had to). */
    for (uint32_t i = 0; i < 1000; i++) {
        memset(buf, (int)(i & 0xff), 48);
        memcpy(buf, &i, sizeof i);
        OK(memlane_publisher_send(pub, buf, 48, 0));
    }
    EXPECT(MEMLANE_LAGGED, memlane_subscriber_recv(lossy, buf, sizeof buf, &len, 0));
    CHECK(strstr(memlane_last_error_message(), "lost") != NULL);
    OK(memlane_subscriber_lost(lossy, &lost_messages, NULL));
    OK(memlane_subscriber_lost(lossy, NULL, &lost_bytes));
    CHECK(lost_messages > 0 && lost_messages < 1000 && lost_bytes > 0);
    /* Then the oldest messages still in the ring, whole and in order, up
     * to the last one sent. */
    uint32_t prev = 0, got = 0, seq = 0;
    while (memlane_subscriber_recv(lossy, buf, sizeof buf, &len, 0) == MEMLANE_OK) {
        memcpy(&seq, buf, sizeof seq);
        CHECK(len == 48 && (got == 0 || seq == prev + 1));
        for (size_t k = sizeof seq; k < 48; k++) {
            CHECK(buf[k] == (uint8_t)(seq & 0xff));
        }
        prev = seq;
        got++;
    }
    CHECK(got > 0 && prev == 999 && lost_messages + got == 1000);
    EXPECT(MEMLANE_NULL_POINTER, memlane_subscriber_lost(NULL, NULL, NULL));
    memlane_publisher_close(pub);
    memlane_subscriber_close(lossy);
    memlane_channel_close(ch);
    OK(memlane_remove(NULL, n));
}

/* Two processes: the child opens everything by name. */
static void test_cross_process(void) {
    const char *seg_name = name("xseg");
    const char *ready_name = name("xseg.ready");
    const char *reply_name = name("xseg.reply");
    const char *chan_name = name("xchan");
    memlane_segment *seg = NULL;
    memlane_event *ready = NULL, *reply = NULL;
    memlane_channel *ch = NULL;
    memlane_subscriber *sub = NULL;
    OK(memlane_segment_create(NULL, seg_name, 1000000, &seg));
    OK(memlane_event_create(NULL, ready_name, &ready));
    OK(memlane_event_create(NULL, reply_name, &reply));
    OK(memlane_channel_create(NULL, chan_name, 64 * 1024, 256, 0, 0, &ch));
    OK(memlane_subscriber_new(ch, 0, &sub));
    fflush(NULL);

    pid_t child = fork();
    if (child == 0) {
        /* The child: a client of the segment, a publisher on the channel. */
        int bad = 0;
        memlane_segment *s = NULL;
        memlane_event *r = NULL, *back = NULL;
        memlane_channel *c = NULL;
        memlane_publisher *p = NULL;
        bad |= memlane_segment_open(NULL, seg_name, MEMLANE_ACCESS_READ_WRITE, &s) != MEMLANE_OK;
        bad |= memlane_event_open(NULL, ready_name, &r) != MEMLANE_OK;
        bad |= memlane_event_open(NULL, reply_name, &back) != MEMLANE_OK;
        bad |= memlane_event_wait(r, 10000) != MEMLANE_OK;
        char text[1024] = {0};
        bad |= memlane_segment_read(s, 0, (uint8_t *)text, 1023) != MEMLANE_OK;
        bad |= strcmp(text, "from the parent") != 0;
        bad |= memlane_segment_write(s, 1024, (const uint8_t *)"from the child", 15) != MEMLANE_OK;
        bad |= memlane_event_notify(back) != MEMLANE_OK;
        bad |= memlane_channel_open(NULL, chan_name, &c) != MEMLANE_OK;
        bad |= memlane_publisher_new(c, &p) != MEMLANE_OK;
        for (int i = 0; i < 1000 && !bad; i++) {
            char msg[32];
            int n = snprintf(msg, sizeof msg, "message %d", i);
            bad |= memlane_publisher_send(p, (const uint8_t *)msg, (size_t)n, 10000) != MEMLANE_OK;
        }
        if (bad) {
            fprintf(stderr, "child: %s\n", memlane_last_error_message());
        }
        memlane_publisher_close(p);
        memlane_channel_close(c);
        memlane_event_close(back);
        memlane_event_close(r);
        memlane_segment_close(s);
        _exit(bad ? 1 : 0);
    }
    CHECK(child > 0);

    OK(memlane_segment_write(seg, 0, (const uint8_t *)"from the parent", 16));
    OK(memlane_event_notify(ready));
    OK(memlane_event_wait(reply, 10000));
    char text[32] = {0};
    OK(memlane_segment_read(seg, 1024, (uint8_t *)text, 15));
    CHECK(strcmp(text, "from the child") == 0);
    int in_order = 1;
    for (int i = 0; i < 1000; i++) {
        uint8_t buf[256];
        size_t len = 0;
        char want[32];
        int n = snprintf(want, sizeof want, "message %d", i);
        if (memlane_subscriber_recv(sub, buf, sizeof buf, &len, 10000) != MEMLANE_OK ||
            len != (size_t)n || memcmp(buf, want, len) != 0) {
            in_order = 0;
            fprintf(stderr, "message %d: %s\n", i, memlane_last_error_message());
            break;
        }
    }
    CHECK(in_order);
    int status = 0;
    CHECK(waitpid(child, &status, 0) == child);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);

    memlane_subscriber_close(sub);
    memlane_channel_close(ch);
    memlane_event_close(reply);
    memlane_event_close(ready);
    memlane_segment_close(seg);
    OK(memlane_remove(NULL, chan_name));
    OK(memlane_remove(NULL, reply_name));
    OK(memlane_remove(NULL, ready_name));
    OK(memlane_remove(NULL, seg_name));
}

int main(void) {
    test_status_and_errors();
    test_null_pointers();
    test_bad_names();
    test_missing_names();
    test_segment();
    test_file_backed_segment();
    test_page_file_segment();
    test_event();
    test_latest();
    test_channel();
    test_disconnected();
    test_lossy();
    test_cross_process();
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
