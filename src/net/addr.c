/* Parsing and printing of "host:port" addresses. */
#include "net/addr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"

int mf_net_split_hostport(const char *addr, char *host, size_t host_len, uint16_t *port)
{
    if (!addr || !host || host_len == 0)
        return MF_EINVAL;
    const char *h = addr, *colon;
    size_t hlen;
    if (addr[0] == '[') {
        const char *close = strchr(addr, ']');
        if (!close || close[1] != ':')
            return MF_EINVAL;
        h = addr + 1;
        hlen = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(addr, ':');
        if (!colon)
            return MF_EINVAL;
        hlen = (size_t)(colon - addr);
        if (memchr(addr, ':', hlen))
            return MF_EINVAL; /* bare IPv6 needs brackets */
    }
    if (hlen == 0 || hlen >= host_len)
        return MF_EINVAL;
    const char *p = colon + 1;
    if (*p == '\0' || strlen(p) > 5)
        return MF_EINVAL;
    unsigned long v = 0;
    for (const char *q = p; *q; q++) {
        if (*q < '0' || *q > '9')
            return MF_EINVAL;
        v = v * 10 + (unsigned long)(*q - '0');
    }
    if (v > 65535)
        return MF_EINVAL;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    *port = (uint16_t)v;
    return 0;
}

int mf_net_sockaddr(const char *host, uint16_t port, struct sockaddr_storage *out)
{
    memset(out, 0, sizeof(*out));
    if (strcmp(host, "localhost") == 0)
        host = "127.0.0.1";
    struct sockaddr_in *v4 = (struct sockaddr_in *)out;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)out;
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(port);
        return 0;
    }
    if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(port);
        return 0;
    }
    return MF_EINVAL;
}

const char *mf_net_format(const struct sockaddr *sa, char *buf, size_t len)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *v4 = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &v4->sin_addr, ip, sizeof(ip));
        snprintf(buf, len, "%s:%u", ip, ntohs(v4->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)sa;
        if (IN6_IS_ADDR_V4MAPPED(&v6->sin6_addr)) {
            /* An IPv4 client of a "::" listener: said as IPv4, as a 0.0.0.0
             * listener says it (audit records and logs name one address). */
            inet_ntop(AF_INET, &v6->sin6_addr.s6_addr[12], ip, sizeof(ip));
            snprintf(buf, len, "%s:%u", ip, ntohs(v6->sin6_port));
        } else {
            inet_ntop(AF_INET6, &v6->sin6_addr, ip, sizeof(ip));
            snprintf(buf, len, "[%s]:%u", ip, ntohs(v6->sin6_port));
        }
    } else {
        snprintf(buf, len, "?");
    }
    return buf;
}
