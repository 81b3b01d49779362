/*
 * sha256: SHA-256 (FIPS 180-4), for the journal's hash chain.  Our own few lines instead of
 * libcrypto's EVP, whose first use maps in megabytes of the library (providers, config): the
 * daemon's resident set stays small.  Pure; checked against the FIPS test vectors.
 */
#ifndef PV_COMMON_SHA256_H
#define PV_COMMON_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define PV_SHA256_LEN 32

typedef struct {
	uint32_t h[8];
	uint64_t bytes;     /* total length so far */
	unsigned char buf[64];
	size_t nbuf;
} PvSha256;

void pv_sha256_init(PvSha256 *s);
void pv_sha256_update(PvSha256 *s, const void *data, size_t len);
void pv_sha256_final(PvSha256 *s, unsigned char out[PV_SHA256_LEN]);
/* One call: the digest of data. */
void pv_sha256(const void *data, size_t len, unsigned char out[PV_SHA256_LEN]);

#endif
