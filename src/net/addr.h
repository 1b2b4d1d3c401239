/* "host:port" strings as they appear in configs and flags. */
#ifndef MF_NET_ADDR_H
#define MF_NET_ADDR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define MF_NET_HOST_MAX 256

/* Splits "host:port" or "[v6]:port" into host (without brackets) and port.
 * Port 0 is allowed (listeners: pick a free port).
 * @return 0; MF_EINVAL for a missing or bad port, an empty or too long host. */
int mf_net_split_hostport(const char *addr, char *host, size_t host_len, uint16_t *port);

/* Fills a sockaddr from a numeric IPv4/IPv6 host and a port; "localhost" is
 * read as 127.0.0.1 (so it never depends on /etc/hosts ordering v6 first).
 * Listeners take only these; dialers resolve other names (conn.h).
 * @return 0; MF_EINVAL if host is not a literal. */
int mf_net_sockaddr(const char *host, uint16_t port, struct sockaddr_storage *out);

/* Formats a sockaddr as "ip:port" ("[ip]:port" for IPv6). Returns buf. */
const char *mf_net_format(const struct sockaddr *sa, char *buf, size_t len);

#endif
