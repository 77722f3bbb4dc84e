/*
 * test_table.c - display widths and column alignment of admin/table.c,
 * with Chinese unit names next to ASCII.
 */
#include <locale.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "table.h"

/* Prints t into a string the test frees. */
static char *render(const struct table *t)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	table_print(t, f);
	assert_int_equal(fclose(f), 0);
	return buf;
}

/* The display column at which the byte offset off of line starts. */
static size_t column_of(const char *line, size_t off)
{
	char *prefix = strndup(line, off);
	size_t w;

	assert_non_null(prefix);
	w = table_text_width(prefix);
	free(prefix);
	return w;
}

static void test_width(void **state)
{
	(void)state;
	assert_int_equal(table_text_width(""), 0);
	assert_int_equal(table_text_width("abc"), 3);
	assert_int_equal(table_text_width("北京"), 4);
	assert_int_equal(table_text_width("北京ABC有限公司"), 15);
	/* Full-width digits and punctuation are wide too. */
	assert_int_equal(table_text_width("（１）"), 6);
	/* A combining acute accent takes no column. */
	assert_int_equal(table_text_width("e\xcc\x81"), 1);
	/* Bytes that are not UTF-8 count one column each. */
	assert_int_equal(table_text_width("a\xff\xfe"), 3);
	/* A truncated sequence at the end, too. */
	assert_int_equal(table_text_width("a\xe5\x8c"), 3);
}

static void test_alignment_chinese(void **state)
{
	static const char *const headers[] = {"REGNO", "NAME", "KEYS", "STATUS"};
	static const char *const rows[][4] = {
	    {"123456", "北京市住房公积金管理中心", "2", "active"},
	    {"1234567890", "ACME Ltd", "10", "closed"},
	    {"654321", "海淀区某科技有限公司", "1", NULL},
	};
	struct table *t = table_new(4, headers);
	char *out, *line, *save = NULL;
	size_t name_col = 0, keys_end = 0, status_col = 0;
	int n = 0;

	(void)state;
	assert_non_null(t);
	table_set_align(t, 2, TABLE_RIGHT);
	for (size_t i = 0; i < 3; i++)
		assert_true(table_add_row(t, rows[i]));
	assert_int_equal(table_row_count(t), 3);
	out = render(t);
	table_free(t);

	for (line = strtok_r(out, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
		const char *name = n == 0 ? "NAME" : rows[n - 1][1];
		const char *keys = n == 0 ? "KEYS" : rows[n - 1][2];
		const char *status = n == 0 ? "STATUS" : rows[n - 1][3];
		const char *p = strstr(line, name);
		const char *k = strstr(line + (p - line) + strlen(name), keys);

		assert_non_null(p);
		assert_non_null(k);
		/* Every row starts NAME at the same display column... */
		if (n == 0)
			name_col = column_of(line, (size_t)(p - line));
		assert_int_equal(column_of(line, (size_t)(p - line)), name_col);
		/* ...ends the right-aligned KEYS at the same column... */
		if (n == 0)
			keys_end = column_of(line, (size_t)(k - line) + strlen(keys));
		assert_int_equal(column_of(line, (size_t)(k - line) + strlen(keys)), keys_end);
		/* ...and starts STATUS at the same column, or ends without blanks. */
		if (status != NULL) {
			const char *s = strstr(k, status);

			assert_non_null(s);
			if (n == 0)
				status_col = column_of(line, (size_t)(s - line));
			assert_int_equal(column_of(line, (size_t)(s - line)), status_col);
		}
		assert_true(line[strlen(line) - 1] != ' ');
		n++;
	}
	assert_int_equal(n, 4);
	/* The widest name is 24 columns: KEYS ends 2 + 4 after it. */
	assert_int_equal(keys_end, name_col + 24 + 2 + 4);
	free(out);
}

static void test_exact_layout(void **state)
{
	static const char *const headers[] = {"A", "名称"};
	static const char *const r1[] = {"中文", "x"};
	static const char *const r2[] = {"b", "y"};
	struct table *t = table_new(2, headers);
	char *out;

	(void)state;
	assert_non_null(t);
	assert_true(table_add_row(t, r1));
	assert_true(table_add_row(t, r2));
	out = render(t);
	table_free(t);
	assert_string_equal(out, "A     名称\n"
	                         "中文  x\n"
	                         "b     y\n");
	free(out);
}

static void test_control_characters(void **state)
{
	static const char *const headers[] = {"X", "Y"};
	static const char *const r1[] = {"a\nb\tc", "z"};
	struct table *t = table_new(2, headers);
	char *out;

	(void)state;
	assert_non_null(t);
	assert_true(table_add_row(t, r1));
	out = render(t);
	table_free(t);
	/* A newline in a value must not start a new row. */
	assert_string_equal(out, "X      Y\n"
	                         "a b c  z\n");
	free(out);
}

/* Whatever a terminal would act on becomes one space: ESC and DEL, C1 in
 * UTF-8 (U+009B is CSI), the bidi marks, overrides and isolates (U+061C
 * too); Chinese, other characters of the same lead bytes and a lone lead
 * byte stay. */
static void test_clean_terminal_controls(void **state)
{
	char s[] = "a\x1b[2Jb\x7f"
	           "c\xc2\x9b"
	           "31md\xc2\x85"
	           "e\xe2\x80\xae"
	           "f\xe2\x81\xa6"
	           "g\xe2\x80\x8f"
	           "h\xd8\x9c"
	           "i";
	char keep[] = "北京\xc2\xa0\xe2\x80\x94\xe2\x81\xa0\xd8\x9b\xc2";

	(void)state;
	table_clean(s);
	assert_string_equal(s, "a [2Jb c 31md e f g h i");
	table_clean(keep);
	assert_string_equal(keep, "北京\xc2\xa0\xe2\x80\x94\xe2\x81\xa0\xd8\x9b\xc2");
}

static void test_many_rows(void **state)
{
	static const char *const headers[] = {"N"};
	struct table *t = table_new(1, headers);
	char buf[16];
	const char *cell[1] = {buf};

	(void)state;
	assert_non_null(t);
	for (int i = 0; i < 1000; i++) {
		snprintf(buf, sizeof(buf), "%d", i);
		assert_true(table_add_row(t, cell));
	}
	assert_int_equal(table_row_count(t), 1000);
	table_free(t);
}

/* table_fit narrows the shrinkable column only, and a cut cell never
 * splits a double-width character: the ellipsis takes the column left. */
static void test_fit_cuts_with_ellipsis(void **state)
{
	static const char *const headers[] = {"ID", "NAME", "N"};
	static const char *const r1[] = {"abc", "北京东城测试科技有限公司", "1"};
	static const char *const r2[] = {"d", "short", "22"};
	struct table *t = table_new(3, headers);
	char *out;

	(void)state;
	assert_non_null(t);
	table_set_shrink(t, 1, 4);
	table_set_align(t, 2, TABLE_RIGHT);
	assert_true(table_add_row(t, r1));
	assert_true(table_add_row(t, r2));
	/* 3 + 2 + NAME + 2 + 2 = 16: NAME gets 7 columns. */
	table_fit(t, 16);
	out = render(t);
	table_free(t);
	assert_string_equal(out, "ID   NAME      N\n"
	                         "abc  北京东…   1\n"
	                         "d    short    22\n");
	free(out);
}

/* A table that fits is left alone; the minimum is kept when nothing fits. */
static void test_fit_limits(void **state)
{
	static const char *const headers[] = {"A", "B"};
	static const char *const r1[] = {"0123456789", "xyz"};
	struct table *t = table_new(2, headers);
	char *out;

	(void)state;
	assert_non_null(t);
	table_set_shrink(t, 0, 4);
	assert_true(table_add_row(t, r1));
	table_fit(t, 15);
	out = render(t);
	assert_string_equal(out, "A           B\n"
	                         "0123456789  xyz\n");
	free(out);
	table_fit(t, 1);
	out = render(t);
	table_free(t);
	assert_string_equal(out, "A     B\n"
	                         "012…  xyz\n");
	free(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_width),        cmocka_unit_test(test_alignment_chinese),
	    cmocka_unit_test(test_exact_layout), cmocka_unit_test(test_control_characters),
	    cmocka_unit_test(test_many_rows),    cmocka_unit_test(test_fit_cuts_with_ellipsis),
	    cmocka_unit_test(test_fit_limits),   cmocka_unit_test(test_clean_terminal_controls),
	};

	/* As certreg-admin does: widths need a UTF-8 LC_CTYPE. */
	if (setlocale(LC_CTYPE, "C.UTF-8") == NULL) {
		fprintf(stderr, "test_table: no C.UTF-8 locale\n");
		return 1;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
