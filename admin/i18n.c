/*
 * i18n.c - the language of certreg-admin's messages (see i18n.h).
 *
 * The choice is made here from the environment, not left to glibc: a
 * minimal Debian generates no zh_CN locale, setlocale() then fails and
 * gettext would fall back to English for a clerk who set LANG=zh_CN.UTF-8.
 * So the catalogue is picked by name, the character handling falls back to
 * C.UTF-8, and gettext is pointed at zh_CN through LANGUAGE, which glibc
 * honours under any LC_MESSAGES locale but "C"/"POSIX" (hence C.UTF-8).
 */
#include <langinfo.h>
#include <libintl.h>
#include <limits.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "i18n.h"

#ifndef CERTREG_LOCALEDIR
#error "CERTREG_LOCALEDIR must be defined by the build"
#endif

#define I18N_DOMAIN "certreg-admin"

static bool i18n_zh;

static bool i18n_env_chinese(void);
static void i18n_locale_category(int category);
static void i18n_find_catalogue(char *dir, size_t len);

void i18n_init(int argc, char **argv)
{
	char dir[PATH_MAX];

	/* JSON is for programs: its "message" and everything else a script
	 * sees stay English whatever the terminal's language. */
	i18n_zh = i18n_env_chinese() && !i18n_json_asked(argc, argv);
	i18n_locale_category(LC_CTYPE);
	if (!i18n_zh)
		return; /* LC_MESSAGES stays "C": libc's and libpq's words too */
	/* LANGUAGE outranks LC_MESSAGES in gettext: set it, so the catalogue
	 * is found whatever locale setlocale() could or could not load. */
	setenv("LANGUAGE", "zh_CN", 1);
	i18n_locale_category(LC_MESSAGES);
	i18n_find_catalogue(dir, sizeof(dir));
	bindtextdomain(I18N_DOMAIN, dir);
	bind_textdomain_codeset(I18N_DOMAIN, "UTF-8");
	textdomain(I18N_DOMAIN);
}

const char *i18n_text(const char *msgid)
{
	if (!i18n_zh || msgid[0] == '\0')
		return msgid;
	return dgettext(I18N_DOMAIN, msgid);
}

const char *i18n_ctext(const char *ctx_msgid)
{
	const char *tr = i18n_zh ? dgettext(I18N_DOMAIN, ctx_msgid) : ctx_msgid;
	const char *word = strchr(ctx_msgid, '\004');

	/* Untranslated, gettext hands the lookup key back, context and all. */
	if (tr == ctx_msgid && word != NULL)
		return word + 1;
	return tr;
}

const char *i18n_ntext(const char *one, const char *many, unsigned long n)
{
	if (!i18n_zh)
		return n == 1 ? one : many;
	return dngettext(I18N_DOMAIN, one, many, n);
}

bool i18n_chinese(void)
{
	return i18n_zh;
}

enum outcome_lang i18n_outcome_lang(void)
{
	return i18n_zh ? OUTCOME_LANG_ZH : OUTCOME_LANG_EN;
}

bool i18n_json_asked(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			break;
		if (strcmp(argv[i], "--json") == 0)
			return true;
	}
	return false;
}

/* POSIX's order: the first non-empty of LC_ALL, LC_MESSAGES, LANG decides;
 * "zh_CN", "zh_CN.UTF-8", "zh_CN.GB18030@..." all mean Chinese. */
static bool i18n_env_chinese(void)
{
	static const char *const vars[] = {"LC_ALL", "LC_MESSAGES", "LANG"};

	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
		const char *v = getenv(vars[i]);

		if (v != NULL && v[0] != '\0')
			return strncmp(v, "zh_CN", 5) == 0 &&
			       (v[5] == '\0' || v[5] == '.' || v[5] == '@');
	}
	return false;
}

/* The environment's locale for category when it exists and is UTF-8,
 * else C.UTF-8: display widths need UTF-8 (a counter PC set to "C" or GBK
 * still gets aligned Chinese), and gettext ignores LANGUAGE under "C". */
static void i18n_locale_category(int category)
{
	const char *cs;

	if (setlocale(category, "") != NULL) {
		if (category != LC_CTYPE)
			return;
		cs = nl_langinfo(CODESET);
		if (cs != NULL && (strcmp(cs, "UTF-8") == 0 || strcmp(cs, "utf8") == 0))
			return;
	}
	setlocale(category, "C.UTF-8");
}

/*
 * The directory holding zh_CN/LC_MESSAGES/certreg-admin.mo: beside the
 * program in a build tree (build/locale, which `make` fills), then
 * ../share/locale (an installation moved as a whole or built for another
 * PREFIX), then the configured CERTREG_LOCALEDIR.
 */
static void i18n_find_catalogue(char *dir, size_t len)
{
	static const char *const beside[] = {"/locale", "/../share/locale"};
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	char *slash;

	if (n > 0) {
		exe[n] = '\0';
		slash = strrchr(exe, '/');
		if (slash != NULL) {
			*slash = '\0';
			for (size_t i = 0; i < sizeof(beside) / sizeof(beside[0]); i++) {
				char mo[PATH_MAX + 64];
				struct stat st;

				if (snprintf(dir, len, "%s%s", exe, beside[i]) >= (int)len)
					continue;
				snprintf(mo, sizeof(mo), "%s/zh_CN/LC_MESSAGES/" I18N_DOMAIN ".mo",
				         dir);
				if (stat(mo, &st) == 0)
					return;
			}
		}
	}
	snprintf(dir, len, "%s", CERTREG_LOCALEDIR);
}
