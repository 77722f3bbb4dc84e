/*
 * trust.h - trust material from files: anchors, helper intermediates and
 * CRLs (PEM or DER, a CRL directory read in name order) read and handed to
 * the engine, which builds the immutable store a check runs against
 * (verify.h). All file I/O of certificate checking is here; used at
 * start-up, on reload, by certregd -t and by certreg-admin cert check.
 */
#ifndef CERTREG_TRUST_H
#define CERTREG_TRUST_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <openssl/x509.h>

#include "verify.h"

/* The store the settings name: ca_file (required), intermediates_file and
 * crl_dir (optional), built at now (verify_store_from_stacks). NULL with
 * err naming the file and problem, and, if setting is not NULL, *setting
 * the key of the one whose file could not be used ("ca_file",
 * "intermediates_file", "crl_dir"; NULL for another failure), so that the
 * caller can name the setting (config_blame). */
struct verify_store *trust_load(const struct verify_settings *settings, time_t now,
                                const char **setting, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Appends every certificate of a PEM bundle or DER file to out. */
bool trust_load_certs(const char *path, STACK_OF(X509) * out, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Appends the CRLs of a file, or of every regular file of a directory in
 * name order (hidden files skipped), to out. */
bool trust_load_crls(const char *path, STACK_OF(X509_CRL) * out, char *err, size_t errlen)
    __attribute__((warn_unused_result));

#endif
