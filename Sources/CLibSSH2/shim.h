#ifndef WHEELFARM_CLIBSSH2_SHIM_H
#define WHEELFARM_CLIBSSH2_SHIM_H
#include <libssh2.h>
#include <libssh2_sftp.h>
#include <poll.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

/* libssh2 spells several entry points as function-like macros, which Swift cannot import.
   These static inline wrappers give them names Swift can call; lengths are byte counts. */

static inline LIBSSH2_SESSION *wf_session_init(void) {
    return libssh2_session_init_ex(NULL, NULL, NULL, NULL);
}

static inline int wf_session_disconnect(LIBSSH2_SESSION *session, const char *description) {
    return libssh2_session_disconnect_ex(session, SSH_DISCONNECT_BY_APPLICATION, description, "");
}

static inline LIBSSH2_CHANNEL *wf_channel_open_session(LIBSSH2_SESSION *session) {
    return libssh2_channel_open_ex(session, "session", sizeof("session") - 1,
                                   LIBSSH2_CHANNEL_WINDOW_DEFAULT, LIBSSH2_CHANNEL_PACKET_DEFAULT, NULL, 0);
}

static inline int wf_channel_exec(LIBSSH2_CHANNEL *channel, const char *command, unsigned int length) {
    return libssh2_channel_process_startup(channel, "exec", sizeof("exec") - 1, command, length);
}

static inline ssize_t wf_channel_read_stdout(LIBSSH2_CHANNEL *channel, char *buffer, size_t length) {
    return libssh2_channel_read_ex(channel, 0, buffer, length);
}

static inline ssize_t wf_channel_read_stderr(LIBSSH2_CHANNEL *channel, char *buffer, size_t length) {
    return libssh2_channel_read_ex(channel, SSH_EXTENDED_DATA_STDERR, buffer, length);
}

static inline ssize_t wf_channel_write(LIBSSH2_CHANNEL *channel, const char *buffer, size_t length) {
    return libssh2_channel_write_ex(channel, 0, buffer, length);
}

static inline LIBSSH2_CHANNEL *wf_scp_send(LIBSSH2_SESSION *session, const char *path, int mode,
                                           libssh2_int64_t size) {
    return libssh2_scp_send64(session, path, mode, size, 0, 0);
}

/* Integer constants built from shifts, as plain values. */
static const int wf_knownhost_key_sshrsa = LIBSSH2_KNOWNHOST_KEY_SSHRSA;
static const int wf_knownhost_key_ecdsa_256 = LIBSSH2_KNOWNHOST_KEY_ECDSA_256;
static const int wf_knownhost_key_ecdsa_384 = LIBSSH2_KNOWNHOST_KEY_ECDSA_384;
static const int wf_knownhost_key_ecdsa_521 = LIBSSH2_KNOWNHOST_KEY_ECDSA_521;
static const int wf_knownhost_key_ed25519 = LIBSSH2_KNOWNHOST_KEY_ED25519;
static const int wf_knownhost_key_unknown = LIBSSH2_KNOWNHOST_KEY_UNKNOWN;
static const int wf_knownhost_type_plain = LIBSSH2_KNOWNHOST_TYPE_PLAIN;
static const int wf_knownhost_keyenc_raw = LIBSSH2_KNOWNHOST_KEYENC_RAW;

#endif
