/*
 * outcome.c - the table of decision codes and their user-facing texts.
 *
 * Owns every message and hint a user sees, in zh-CN and English, and the
 * labels of the login page around them. The daemon renders them into JSON
 * and HTML (render.c); certreg-admin prints the codes. Adding an outcome or
 * a label means adding a row here and nowhere else.
 */
#include "outcome.h"

#include <string.h>
#include <strings.h>

/* The best weight a language got in Accept-Language, and where. */
struct outcome_lang_pref {
	int q; /* thousandths; -1: not named */
	int pos;
};

static int outcome_lang_quality(const char *p, const char *end);
static const char *outcome_lang_blanks(const char *p, const char *end);
static void outcome_lang_prefer(struct outcome_lang_pref *pref, int q, int pos);

static const struct outcome_info outcome_table[OUTCOME_COUNT] = {
    [OUTCOME_OK] = {"OK",
                    200,
                    {"证书验证通过，允许登录。", "Certificate accepted; login allowed."},
                    {NULL, NULL}},
    [OUTCOME_NO_CERTIFICATE] =
        {"NO_CERTIFICATE",
         403,
         {"未读取到数字证书。", "No client certificate was presented."},
         {"请插入证书介质（USB KEY），确认已安装证书应用环境，然后重新打开浏览器登录。",
          "Insert the certificate USB key, make sure the certificate environment is "
          "installed, then restart the browser and log in again."}},
    [OUTCOME_CERT_MALFORMED] = {"CERT_MALFORMED",
                                403,
                                {"证书格式错误，无法解析。", "The certificate cannot be parsed."},
                                {"请重新插入证书介质后再试；如仍失败，请联系证书颁发机构。",
                                 "Re-insert the USB key and try again; if it still fails, contact "
                                 "the certificate authority."}},
    [OUTCOME_CERT_UNTRUSTED] =
        {"CERT_UNTRUSTED",
         403,
         {"证书不是由本系统认可的证书颁发机构签发的。",
          "The certificate was not issued by a certificate authority this system trusts."},
         {"请使用北京住房公积金认可的数字证书（如 BJCA 证书）登录。",
          "Log in with a certificate accepted by the Beijing Housing Provident Fund (such as "
          "a BJCA certificate)."}},
    [OUTCOME_CERT_EXPIRED] =
        {"CERT_EXPIRED",
         403,
         {"证书已过期。", "The certificate has expired."},
         {"请用证书助手查看证书有效期并核对电脑时间；证书确已过期请办理证书更新，如有疑问请致电 "
          "010-58515511。",
          "Check the certificate's validity in the certificate assistant and your computer's "
          "clock; if it has expired, renew the certificate (helpline 010-58515511)."}},
    [OUTCOME_CERT_NOT_YET_VALID] =
        {"CERT_NOT_YET_VALID",
         403,
         {"证书尚未生效。", "The certificate is not valid yet."},
         {"请稍后再试，或核对电脑系统时间是否准确。",
          "Try again later, or check that your computer's clock is correct."}},
    [OUTCOME_CERT_REVOKED] =
        {"CERT_REVOKED",
         403,
         {"证书已被吊销。", "The certificate has been revoked."},
         {"请联系证书颁发机构办理新证书，并到所属管理部关联开通。",
          "Contact the certificate authority for a new certificate, then have it associated "
          "at your management office."}},
    [OUTCOME_CERT_REVOCATION_UNKNOWN] =
        {"CERT_REVOCATION_UNKNOWN",
         403,
         {"暂时无法确认证书是否已被吊销。",
          "The certificate's revocation status cannot be confirmed right now."},
         {"请稍后再试；如持续出现，请联系管理部。",
          "Try again later; if this persists, contact the management office."}},
    [OUTCOME_CERT_WRONG_USAGE] =
        {"CERT_WRONG_USAGE",
         403,
         {"该证书不能用于登录（用途不符）。",
          "This certificate may not be used for login (wrong key usage)."},
         {"请在浏览器弹出的证书列表中选择签名证书（而非加密证书）后重试。",
          "Choose the signing certificate (not the encryption certificate) when the browser "
          "asks, then try again."}},
    [OUTCOME_KEY_NOT_APPROVED] =
        {"KEY_NOT_APPROVED",
         403,
         {"该KEY没有审核通过，数据库中没有该KEY的信息。",
          "This key has not been approved: it is not registered in the system."},
         {"请您携带相关手续，到所属管理部做关联开通。",
          "Bring the required papers to your management office to have the key associated "
          "with your unit."},
         {"请您携带相关手续，到所属管理部（%s，地址：%s，电话：%s）做关联开通。",
          "Bring the required papers to your management office (%s, address: %s, phone: "
          "%s) to have the key associated with your unit."}},
    [OUTCOME_KEY_SUSPENDED] =
        {"KEY_SUSPENDED",
         403,
         {"该KEY已被挂起（已挂失）。", "This key is suspended (reported lost)."},
         {"如已找回KEY，请到所属管理部办理解挂。",
          "If the key has been found, ask your management office to resume it."}},
    [OUTCOME_KEY_CANCELLED] =
        {"KEY_CANCELLED",
         403,
         {"该KEY已被注销。", "This key has been cancelled."},
         {"请携带新证书和相关手续到所属管理部重新关联开通。",
          "Bring a new certificate and the required papers to your management office."}},
    [OUTCOME_UNIT_INACTIVE] = {"UNIT_INACTIVE",
                               403,
                               {"该单位已注销，不能登录。",
                                "The unit is closed and may not log in."},
                               {"如有疑问，请联系所属管理部。",
                                "Contact your management office if you believe this is wrong."}},
    [OUTCOME_SERVICE_UNAVAILABLE] = {"SERVICE_UNAVAILABLE",
                                     503,
                                     {"系统暂时无法完成验证。",
                                      "The system cannot complete the check right now."},
                                     {"请稍后重试。", "Please try again in a moment."}},
    [OUTCOME_CHALLENGE_INVALID] =
        {"CHALLENGE_INVALID",
         403,
         {"登录验证码无效：已过期、已使用或不是本系统签发的。",
          "The login challenge is not valid: it expired, was already used or was not issued "
          "here."},
         {"请刷新登录页面，重新插入USB KEY签名登录。",
          "Reload the login page and sign in with your USB key again."}},
    [OUTCOME_SIGNATURE_INVALID] =
        {"SIGNATURE_INVALID",
         403,
         {"签名验证失败：签名与证书的公钥不符。",
          "The signature does not verify with the certificate's public key."},
         {"请确认插入的USB KEY与所选证书一致，然后重新登录；如仍失败，请联系证书颁发机构。",
          "Make sure the USB key you inserted holds the chosen certificate and log in again; "
          "if it still fails, contact your certificate authority."}},
};

static const char *const outcome_texts[OUTCOME_TEXT_COUNT][2] = {
    [OUTCOME_TEXT_TITLE] = {"证书登录", "Certificate login"},
    [OUTCOME_TEXT_UNIT] = {"单位", "Unit"},
    [OUTCOME_TEXT_OFFICE] = {"管理部", "Management office"},
    [OUTCOME_TEXT_CERTIFICATE] = {"证书", "Certificate"},
    [OUTCOME_TEXT_VALIDITY] = {"有效期", "Valid"},
    [OUTCOME_TEXT_SERVER_TIME] = {"服务器时间", "Server time"},
    [OUTCOME_TEXT_BEIJING_TIME] = {"北京时间", "Beijing time (UTC+8)"},
    [OUTCOME_TEXT_KEY_ID] = {"KEY 编号", "Key id"},
    [OUTCOME_TEXT_KEY_ID_NOTE] = {"办理关联开通时，请将此 KEY 编号告知管理部工作人员。",
                                  "Give this key id to the management office staff when you "
                                  "have the key associated."},
    [OUTCOME_TEXT_BACK_TO_PORTAL] = {"返回门户", "Back to the portal"},
    [OUTCOME_TEXT_EXPIRING] = {"（剩余 %s 天，请及时更新证书）", " (%s days left: renew soon)"},
    [OUTCOME_TEXT_RETURNING] = {"证书验证通过，正在返回门户……",
                                "Certificate accepted; returning to the portal…"},
    [OUTCOME_TEXT_CONTINUE] = {"继续", "Continue"},
};

const struct outcome_info *outcome_info(outcome_t outcome)
{
	if ((unsigned)outcome >= OUTCOME_COUNT)
		outcome = OUTCOME_SERVICE_UNAVAILABLE;
	return &outcome_table[outcome];
}

const char *outcome_text(enum outcome_text text, enum outcome_lang lang)
{
	if ((unsigned)text >= OUTCOME_TEXT_COUNT)
		return "";
	return outcome_texts[text][lang == OUTCOME_LANG_EN ? 1 : 0];
}

const char *outcome_code(outcome_t outcome)
{
	return outcome_info(outcome)->code;
}

bool outcome_from_code(const char *code, outcome_t *out)
{
	for (int i = 0; i < OUTCOME_COUNT; i++) {
		if (strcmp(outcome_table[i].code, code) == 0) {
			*out = (outcome_t)i;
			return true;
		}
	}
	return false;
}

bool outcome_is_certificate(outcome_t outcome)
{
	return outcome >= OUTCOME_CERT_MALFORMED && outcome <= OUTCOME_CERT_WRONG_USAGE;
}

/*
 * Content negotiation (RFC 9110, section 12.5.4) between the two languages
 * certreg speaks: each gets the highest q of the ranges naming it ("en",
 * "en-US"; "*" when none does), English wins on a higher q, or on an equal
 * one listed first, and Chinese otherwise. Taking only the first range
 * answered a browser set to "fr, en;q=0.8" in Chinese, which it does not
 * accept, and "en;q=0" (anything but English) in English.
 */
enum outcome_lang outcome_lang_from_header(const char *accept_language)
{
	struct outcome_lang_pref en = {-1, 0}, zh = {-1, 0}, any = {-1, 0};
	const char *p = accept_language;

	for (int pos = 0; p != NULL && *p != '\0'; pos++) {
		const char *end = p + strcspn(p, ",");
		size_t len;
		int q;

		p = outcome_lang_blanks(p, end);
		len = strcspn(p, ";, \t");
		if (len > (size_t)(end - p))
			len = (size_t)(end - p);
		q = outcome_lang_quality(p + len, end);
		if (len == 1 && p[0] == '*')
			outcome_lang_prefer(&any, q, pos);
		else if (len >= 2 && (len == 2 || p[2] == '-') && strncasecmp(p, "en", 2) == 0)
			outcome_lang_prefer(&en, q, pos);
		else if (len >= 2 && (len == 2 || p[2] == '-') && strncasecmp(p, "zh", 2) == 0)
			outcome_lang_prefer(&zh, q, pos);
		p = *end == ',' ? end + 1 : NULL;
	}
	if (en.q < 0)
		en = any;
	if (zh.q < 0)
		zh = any;
	if (en.q > 0 && (en.q > zh.q || (en.q == zh.q && en.pos < zh.pos)))
		return OUTCOME_LANG_EN;
	return OUTCOME_LANG_ZH;
}

/* A range's weight in thousandths: 1000 without "q=", -1 when the q is not
 * one RFC 9110 allows (the range is then ignored). p is what follows the
 * range up to end (";q=0.8", maybe with blanks). */
static int outcome_lang_quality(const char *p, const char *end)
{
	int q, scale = 100;

	p = outcome_lang_blanks(p, end);
	if (p == end)
		return 1000;
	if (*p != ';')
		return -1;
	p = outcome_lang_blanks(p + 1, end);
	if (end - p < 3 || (p[0] != 'q' && p[0] != 'Q') || p[1] != '=' ||
	    (p[2] != '0' && p[2] != '1'))
		return -1;
	q = (p[2] - '0') * 1000;
	p += 3;
	if (p < end && *p == '.')
		for (p++; p < end && *p >= '0' && *p <= '9' && scale > 0; p++, scale /= 10)
			q += (*p - '0') * scale;
	p = outcome_lang_blanks(p, end);
	return p == end && q <= 1000 ? q : -1;
}

static const char *outcome_lang_blanks(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	return p;
}

static void outcome_lang_prefer(struct outcome_lang_pref *pref, int q, int pos)
{
	if (q > pref->q)
		*pref = (struct outcome_lang_pref){q, pos};
}
