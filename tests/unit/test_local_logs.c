/* Unit tests for a local member's log rotation: copied and emptied under a writer that keeps
 * its O_APPEND descriptor, as etcd does. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../src/runtime/local_logs.h"
#include "etcd-gitops/util.h"

struct fixture {
        char dir[64];
        char *path;
        int writer;
};

static int setup(void **state) {
        struct fixture *f = calloc(1, sizeof(*f));
        assert_non_null(f);
        snprintf(f->dir, sizeof(f->dir), "/tmp/eg-test-logs-XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        f->path = eg_path_join(f->dir, "etcd.log");
        f->writer = open(f->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        assert_true(f->writer >= 0);
        *state = f;
        return 0;
}

static int teardown(void **state) {
        struct fixture *f = *state;
        close(f->writer);
        eg_rm_rf(f->dir);
        free(f->path);
        free(f);
        return 0;
}

static void write_lines(int fd, char c, size_t n) {
        char line[100];
        memset(line, c, sizeof(line) - 1);
        line[sizeof(line) - 1] = '\n';
        for (size_t i = 0; i < n; i++)
                assert_int_equal(eg_write_all(fd, line, sizeof(line)), 0);
}

static off_t size_of(const char *dir, const char *name) {
        _cleanup_free_ char *p = eg_path_join(dir, name);
        struct stat st;
        return p && stat(p, &st) == 0 ? st.st_size : -1;
}

static char first_byte(const char *dir, const char *name) {
        _cleanup_free_ char *p = eg_path_join(dir, name);
        FILE *fp = fopen(p, "r");
        int c = fp ? fgetc(fp) : EOF;
        if (fp)
                fclose(fp);
        return (char)c;
}

static void test_local_logs__under_the_limit_is_left(void **state) {
        struct fixture *f = *state;
        write_lines(f->writer, 'a', 9);
        assert_int_equal(local_member_log_rotate(f->path), 0);
        assert_int_equal(size_of(f->dir, "etcd.log"), 900);
        assert_int_equal(size_of(f->dir, "etcd.log.1"), -1);
}

static void test_local_logs__writer_goes_on_in_the_emptied_file(void **state) {
        struct fixture *f = *state;
        write_lines(f->writer, 'a', 12);
        assert_int_equal(local_member_log_rotate(f->path), 0);
        assert_int_equal(size_of(f->dir, "etcd.log.1"), 1200);
        assert_int_equal(size_of(f->dir, "etcd.log"), 0);
        /* O_APPEND: the next line lands at the new end, with no hole before it */
        write_lines(f->writer, 'b', 1);
        assert_int_equal(size_of(f->dir, "etcd.log"), 100);
        assert_int_equal(first_byte(f->dir, "etcd.log"), 'b');
        assert_int_equal(size_of(f->dir, "etcd.log.1.partial"), -1);
}

static void test_local_logs__older_copies_move_up_to_keep(void **state) {
        struct fixture *f = *state;
        const char marks[] = "abcd";
        for (size_t i = 0; i < 4; i++) {
                write_lines(f->writer, marks[i], 11);
                assert_int_equal(local_member_log_rotate(f->path), 0);
        }
        assert_int_equal(first_byte(f->dir, "etcd.log.1"), 'd');
        assert_int_equal(first_byte(f->dir, "etcd.log.2"), 'c');
        assert_int_equal(size_of(f->dir, "etcd.log.3"), -1);
}

static void test_local_logs__missing_log_is_nothing_to_do(void **state) {
        struct fixture *f = *state;
        _cleanup_free_ char *other = eg_path_join(f->dir, "none.log");
        assert_int_equal(local_member_log_rotate(other), 0);
}

int main(void) {
        /* read once, at the first rotation */
        setenv("ETCD_GITOPS_MEMBER_LOG_MAX_SIZE", "1K", 1);
        setenv("ETCD_GITOPS_MEMBER_LOG_KEEP", "2", 1);
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_local_logs__under_the_limit_is_left, setup, teardown),
                cmocka_unit_test_setup_teardown(test_local_logs__writer_goes_on_in_the_emptied_file, setup, teardown),
                cmocka_unit_test_setup_teardown(test_local_logs__older_copies_move_up_to_keep, setup, teardown),
                cmocka_unit_test_setup_teardown(test_local_logs__missing_log_is_nothing_to_do, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
