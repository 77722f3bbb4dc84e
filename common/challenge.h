/*
 * challenge.h - the random challenges of signed-challenge login
 * (contract section 8): made and checked without the database.
 *
 * A challenge is base64url(version || expiry || 32 random bytes || tag),
 * the tag an HMAC-SHA256 (truncated to 128 bits) under a key every daemon
 * sharing the database holds. Issuing one therefore writes nothing; the
 * database is written once, when a login consumes it (its SHA-256 is
 * recorded until it expires, so it cannot be used twice, on any daemon,
 * across restarts). Unused challenges cost no storage at all.
 * Pure but for the random bytes (RAND_bytes); the caller owns the key.
 */
#ifndef CERTREG_CHALLENGE_H
#define CERTREG_CHALLENGE_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#define CHALLENGE_KEY_LEN 32
/* 57 bytes in base64url: 76 characters and a NUL. */
#define CHALLENGE_TEXT_LEN 77
/* The SHA-256 of the challenge text, lowercase hex, and a NUL. */
#define CHALLENGE_HASH_LEN 65
/*
 * How much further ahead than its lifetime a challenge may expire, for the
 * clock of the daemon that issued it running ahead of the checker's. NTP
 * keeps them milliseconds apart; 5 s spares a daemon briefly off (a host
 * just booted, a clock being slewed back) and the second an issue and its
 * check may straddle, while a challenge from a clock that ran ahead stays
 * usable for challenge_ttl and 5 s at most, not for hours.
 */
#define CHALLENGE_SKEW_S 5

enum challenge_check {
	CHALLENGE_VALID,
	CHALLENGE_MALFORMED, /* not one of ours: wrong length, alphabet, version or tag */
	CHALLENGE_EXPIRED,
	CHALLENGE_TOO_LONG, /* ours, but expiring after now + ttl + CHALLENGE_SKEW_S */
};

/* A new challenge valid until expires_at; false when the random source
 * fails (then nothing is written to out). */
bool challenge_make(const unsigned char key[CHALLENGE_KEY_LEN], time_t expires_at,
                    char out[CHALLENGE_TEXT_LEN]) __attribute__((warn_unused_result));

/* Checks text's form and tag under key and its expiry against now: after
 * now, and no later than now + ttl (the checker's challenge_ttl) +
 * CHALLENGE_SKEW_S, since the tag proves who made it, not that their clock
 * was right. Unless CHALLENGE_MALFORMED, *expires_at is its expiry and hash
 * the hex SHA-256 of text (what the database records). */
enum challenge_check challenge_check(const unsigned char key[CHALLENGE_KEY_LEN], const char *text,
                                     time_t now, int ttl, time_t *expires_at,
                                     char hash[CHALLENGE_HASH_LEN]);

#endif
