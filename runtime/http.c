#include "http.h"

#include <arpa/inet.h>
#include <civetweb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <unistd.h>
#include <ctype.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "buf.h"
#include "hub.h"

#ifndef NTA_WEB_DIR
#define NTA_WEB_DIR "web"
#endif

/* Each push client holds one civetweb worker thread for as long as it is
 * connected; the rest serve API requests and files. */
#define MAX_PUSH_CLIENTS 64
#define NUM_THREADS "80"
/* A write that does not complete within this drops the connection: a
 * stalled browser costs one thread for at most this long. */
#define REQUEST_TIMEOUT_MS "5000"
#define HISTORY_BYTES ((size_t)128 << 20)
#define MAX_CLIENT_LAG ((size_t)200000) /* frames */
#define STATUS_INTERVAL_US 1000000
#define RELOAD_TIMEOUT_MS 30000
#define PUSH_CHUNK (256 * 1024)
#define MAX_STATIC_FILE (4 << 20)
#define RULES_STATUS_MAX (256 * 1024)

struct nta_http {
    struct mg_context *ctx;
    nta_hub *hub;
    nta_pipeline *p;
    const nta_pipeline_conf *conf;
    const char *mode;
    char *token;
    int loopback;
    struct sockaddr_storage self; /* where a connection reaches this server */
    socklen_t self_len;
    char web_root[PATH_MAX];
    nta_http_rules rules;
    int64_t last_status_us;
    char *rules_buf;
};

/* ---- options ---- */

typedef struct listen_addr {
    char host[64]; /* without brackets */
    int v6;
    long port;
} listen_addr;

static int parse_listen(const char *s, listen_addr *a)
{
    memset(a, 0, sizeof *a);
    const char *colon;
    if (s[0] == '[') {
        const char *rb = strchr(s, ']');
        if (rb == NULL || rb[1] != ':' || (size_t)(rb - s - 1) >= sizeof a->host)
            return -1;
        memcpy(a->host, s + 1, (size_t)(rb - s - 1));
        a->v6 = 1;
        colon = rb + 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL || (size_t)(colon - s) >= sizeof a->host || colon == s)
            return -1;
        memcpy(a->host, s, (size_t)(colon - s));
    }
    char *end;
    a->port = strtol(colon + 1, &end, 10);
    if (colon[1] == '\0' || *end || a->port < 0 || a->port > 65535)
        return -1;
    unsigned char bin[16];
    if (strcmp(a->host, "localhost") == 0)
        snprintf(a->host, sizeof a->host, "127.0.0.1");
    return inet_pton(a->v6 ? AF_INET6 : AF_INET, a->host, bin) == 1 ? 0 : -1;
}

/* Loopback is the whole of 127.0.0.0/8 and ::1: nothing else can connect
 * to a socket bound there. 0.0.0.0 and :: are every interface, not loopback. */
static int is_loopback(const listen_addr *a)
{
    unsigned char bin[16];
    if (a->v6)
        return inet_pton(AF_INET6, a->host, bin) == 1 && !memcmp(bin, in6addr_loopback.s6_addr, 16);
    return inet_pton(AF_INET, a->host, bin) == 1 && bin[0] == 127;
}

int nta_http_opts_check(const nta_http_opts *o, char *err, size_t errlen)
{
    if (o->listen == NULL)
        return 0;
    listen_addr a;
    if (parse_listen(o->listen, &a) != 0) {
        snprintf(err, errlen,
                 "--http takes ADDR:PORT (an IPv4 address, localhost, or [IPv6]), not '%s'",
                 o->listen);
        return -1;
    }
    if (!is_loopback(&a) && (o->token == NULL || o->token[0] == '\0')) {
        snprintf(err, errlen,
                 "--http %s is not a loopback address: give an access token with "
                 "--http-token or --http-token-file",
                 o->listen);
        return -1;
    }
    if (o->token && strlen(o->token) < 8) {
        snprintf(err, errlen, "the HTTP access token must have at least 8 characters");
        return -1;
    }
    return 0;
}

int nta_http_read_token_file(const char *path, char *token, size_t len, char *err,
                             size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        snprintf(err, errlen, "--http-token-file %s: cannot open it", path);
        return -1;
    }
    char line[1024];
    int ok = fgets(line, sizeof line, f) != NULL;
    fclose(f);
    char *s = line, *e;
    if (ok) {
        while (isspace((unsigned char)*s))
            s++;
        e = s + strlen(s);
        while (e > s && isspace((unsigned char)e[-1]))
            *--e = '\0';
    }
    if (!ok || *s == '\0' || strlen(s) >= len) {
        snprintf(err, errlen, "--http-token-file %s: no token (of at most %zu characters) on "
                 "its first line", path, len - 1);
        return -1;
    }
    snprintf(token, len, "%s", s);
    return 0;
}

int64_t nta_http_parse_history(const char *s)
{
    int64_t ms = nta_parse_duration(s);
    return ms > 0 ? ms : -1;
}

/* ---- responses ---- */

static int is_head(const struct mg_request_info *ri)
{
    return strcmp(ri->request_method, "HEAD") == 0;
}

static int reply(struct mg_connection *c, int status, const char *ctype, const char *body,
                 size_t len, const char *extra)
{
    mg_printf(c,
              "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
              "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n"
              "X-Frame-Options: DENY\r\nConnection: close\r\n%s\r\n",
              status, mg_get_response_code_text(c, status), ctype, len, extra ? extra : "");
    if (!is_head(mg_get_request_info(c)))
        mg_write(c, body, len);
    return status;
}

static int reply_json(struct mg_connection *c, int status, nta_buf *b)
{
    return reply(c, status, "application/json", b->data ? b->data : "", b->len, NULL);
}

static int reply_error(struct mg_connection *c, int status, const char *msg, const char *extra)
{
    nta_buf b = {0};
    nta_buf_puts(&b, "{\"error\":");
    nta_buf_json_str(&b, msg, strlen(msg));
    nta_buf_putc(&b, '}');
    reply(c, status, "application/json", b.data, b.len, extra);
    nta_buf_free(&b);
    return status;
}

/* ---- access ---- */

/* Compares without an early exit, so timing says nothing about the token. */
static int token_equal(const char *a, size_t alen, const char *b)
{
    size_t blen = strlen(b);
    unsigned char d = alen != blen;
    for (size_t i = 0; i < alen; i++)
        d |= (unsigned char)(a[i] ^ b[i % (blen ? blen : 1)]);
    return d == 0;
}

/* A Host header naming loopback: 127.x.y.z, localhost or [::1], any port. */
static int loopback_host(const char *host)
{
    if (host == NULL)
        return 0;
    char name[64];
    size_t n;
    if (host[0] == '[') {
        const char *rb = strchr(host, ']');
        if (rb == NULL)
            return 0;
        n = (size_t)(rb - host - 1);
        if (n >= sizeof name)
            return 0;
        memcpy(name, host + 1, n);
        name[n] = '\0';
        unsigned char bin[16];
        return inet_pton(AF_INET6, name, bin) == 1 && !memcmp(bin, in6addr_loopback.s6_addr, 16);
    }
    const char *colon = strchr(host, ':');
    n = colon ? (size_t)(colon - host) : strlen(host);
    if (n >= sizeof name)
        return 0;
    memcpy(name, host, n);
    name[n] = '\0';
    if (strcmp(name, "localhost") == 0)
        return 1;
    unsigned char bin[4];
    return inet_pton(AF_INET, name, bin) == 1 && bin[0] == 127;
}

/* Checks a request to the API, push channel or metrics. Returns 0, or the
 * status it answered with. */
static int check_access(nta_http *s, struct mg_connection *c, const struct mg_request_info *ri)
{
    const char *host = mg_get_header(c, "Host");
    const char *origin = mg_get_header(c, "Origin");
    if (origin) {
        /* Browsers send Origin on cross-origin requests and on every POST:
         * only the page this server serves may use the API. */
        char own[300];
        snprintf(own, sizeof own, "http://%s", host ? host : "");
        if (host == NULL || strcmp(origin, own) != 0)
            return reply_error(c, 403, "cross-origin request refused", NULL);
    }
    if (s->token == NULL) {
        if (!loopback_host(host))
            return reply_error(c, 403, "this server answers only to a loopback Host", NULL);
        return 0;
    }
    const char *auth = mg_get_header(c, "Authorization");
    if (auth && strncasecmp(auth, "Bearer ", 7) == 0) {
        const char *t = auth + 7;
        if (token_equal(t, strlen(t), s->token))
            return 0;
    } else if (ri->query_string) {
        char t[512];
        int n = mg_get_var(ri->query_string, strlen(ri->query_string), "token", t, sizeof t);
        if (n >= 0 && token_equal(t, (size_t)n, s->token))
            return 0;
    }
    return reply_error(c, 401, "a valid access token is required",
                       "WWW-Authenticate: Bearer realm=\"nta\"\r\n");
}

/* ---- static files ---- */

static const char *content_type(const char *name)
{
    static const struct {
        const char *ext, *type;
    } types[] = {
        {".html", "text/html; charset=utf-8"}, {".js", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},   {".png", "image/png"},
        {".svg", "image/svg+xml"},             {".ico", "image/x-icon"},
    };
    const char *dot = strrchr(name, '.');
    for (size_t i = 0; dot && i < sizeof types / sizeof types[0]; i++)
        if (strcmp(dot, types[i].ext) == 0)
            return types[i].type;
    return NULL;
}

/* A plain file name: letters, digits, '-', '_', and dots not at the start.
 * No '/', so nothing below or above the directory it is looked up in. */
static int plain_name(const char *s)
{
    if (*s == '\0' || *s == '.' || strlen(s) > 100)
        return 0;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_' && *s != '.')
            return 0;
    return 1;
}

static int serve_file(nta_http *s, struct mg_connection *c, const char *dir, const char *name)
{
    const char *ctype = content_type(name);
    if (!plain_name(name) || ctype == NULL)
        return reply_error(c, 404, "not found", NULL);
    char path[PATH_MAX + 256], real[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s%s", s->web_root, dir, name);
    struct stat sb;
    /* realpath keeps a symlink inside web/ from leading out of it. */
    if (realpath(path, real) == NULL || strncmp(real, s->web_root, strlen(s->web_root)) != 0 ||
        real[strlen(s->web_root)] != '/' || stat(real, &sb) != 0 || !S_ISREG(sb.st_mode) ||
        sb.st_size > MAX_STATIC_FILE)
        return reply_error(c, 404, "not found", NULL);
    FILE *f = fopen(real, "rb");
    if (f == NULL)
        return reply_error(c, 404, "not found", NULL);
    char *data = malloc((size_t)sb.st_size + 1);
    size_t n = data ? fread(data, 1, (size_t)sb.st_size, f) : 0;
    fclose(f);
    if (data == NULL || n != (size_t)sb.st_size) {
        free(data);
        return reply_error(c, 500, "cannot read the file", NULL);
    }
    int rc = reply(c, 200, ctype, data, n,
                   "Content-Security-Policy: default-src 'self'; img-src 'self' data:\r\n");
    free(data);
    return rc;
}

/* ---- API ---- */

/* A query parameter: 1 found, 0 absent, -1 too long. */
static int query_var(const struct mg_request_info *ri, const char *name, char *out, size_t len)
{
    if (ri->query_string == NULL)
        return 0;
    int n = mg_get_var(ri->query_string, strlen(ri->query_string), name, out, len);
    return n >= 0 ? 1 : n == -1 ? 0 : -1;
}

/* since=epoch ms (default: everything kept). Returns 0, or -1 malformed. */
static int query_since(const struct mg_request_info *ri, int64_t *since)
{
    char v[32];
    *since = INT64_MIN;
    int r = query_var(ri, "since", v, sizeof v);
    if (r == 0)
        return 0;
    char *end;
    long long x = strtoll(v, &end, 10);
    if (r < 0 || v[0] == '\0' || *end)
        return -1;
    *since = x;
    return 0;
}

static int api_windows(nta_http *s, struct mg_connection *c, const struct mg_request_info *ri)
{
    char name[NTA_WINDOW_NAME_MAX], lim[16];
    int64_t since;
    int hn = query_var(ri, "name", name, sizeof name);
    int hl = query_var(ri, "limit", lim, sizeof lim);
    if (hn < 0 || hl < 0 || query_since(ri, &since) != 0)
        return reply_error(c, 400, "bad query: name=WINDOW, since=EPOCH_MS, limit=N", NULL);
    size_t limit = 20000;
    if (hl > 0) {
        char *end;
        long v = strtol(lim, &end, 10);
        if (*end || v < 1 || v > 200000)
            return reply_error(c, 400, "limit takes 1..200000", NULL);
        limit = (size_t)v;
    }
    nta_buf b = {0};
    nta_hub_windows_json(s->hub, hn > 0 ? name : NULL, since, limit, &b);
    int rc = reply_json(c, 200, &b);
    nta_buf_free(&b);
    return rc;
}

static int api_simple(nta_http *s, struct mg_connection *c, const struct mg_request_info *ri,
                      const char *what)
{
    nta_buf b = {0};
    int64_t since;
    if (strcmp(what, "alerts") == 0) {
        if (query_since(ri, &since) != 0)
            return reply_error(c, 400, "bad query: since=EPOCH_MS", NULL);
        nta_hub_alerts_json(s->hub, since, &b);
    } else if (strcmp(what, "status") == 0) {
        nta_hub_status_json(s->hub, &b);
    } else {
        nta_hub_rules_json(s->hub, &b);
    }
    int rc = reply_json(c, 200, &b);
    nta_buf_free(&b);
    return rc;
}

static int api_reload(nta_http *s, struct mg_connection *c, const struct mg_request_info *ri)
{
    /* Reload takes no body; a large one is refused, a small one drained. */
    if (ri->content_length > 4096)
        return reply_error(c, 413, "request body too large", NULL);
    char sink[4096];
    if (ri->content_length > 0)
        mg_read(c, sink, (size_t)ri->content_length);
    nta_buf b = {0};
    int r = nta_hub_reload(s->hub, RELOAD_TIMEOUT_MS, &b);
    int rc;
    if (r == -2)
        rc = reply_error(c, 503, "reload is not available: no rules engine is running", NULL);
    else if (r == -1)
        rc = reply_error(c, 504, "the pipeline did not run the reload in time", NULL);
    else
        rc = reply_json(c, r == 0 ? 200 : 422, &b);
    nta_buf_free(&b);
    return rc;
}

static int api_metrics(nta_http *s, struct mg_connection *c)
{
    nta_buf b = {0};
    nta_hub_metrics(s->hub, &b);
    int rc = reply(c, 200, "text/plain; version=0.0.4; charset=utf-8", b.data, b.len, NULL);
    nta_buf_free(&b);
    return rc;
}

/* Server-sent events: history first (from Last-Event-ID on a reconnect, or
 * with ?history=0 only new frames), then live frames, until the client goes
 * away, falls behind, or the server stops. Wide windows come as "top" frames
 * unless ?full=1 asks for every result. */
static int api_events(nta_http *s, struct mg_connection *c, const struct mg_request_info *ri)
{
    nta_hub_cursor cur = {0};
    const char *last = mg_get_header(c, "Last-Event-ID");
    char hist[8];
    if (last) {
        char *end;
        unsigned long long v = strtoull(last, &end, 10);
        if (*end == '\0')
            cur.next = v + 1;
    } else if (query_var(ri, "history", hist, sizeof hist) > 0 && strcmp(hist, "0") == 0) {
        cur.next = UINT64_MAX; /* set to the newest below */
    }
    cur.full = query_var(ri, "full", hist, sizeof hist) > 0 && strcmp(hist, "1") == 0;
    if (nta_hub_client_enter(s->hub, MAX_PUSH_CLIENTS) != 0)
        return reply_error(c, 503, "too many push clients", NULL);
    mg_printf(c, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                 "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n"
                 "Connection: close\r\n\r\nretry: 2000\n\n");
    nta_buf out = {0};
    int64_t closes[256];
    int dropped = 0;
    if (cur.next == UINT64_MAX)
        nta_hub_cursor_newest(s->hub, &cur);
    for (;;) {
        nta_buf_reset(&out);
        int nclose = 0;
        int n = nta_hub_next(s->hub, &cur, &out, PUSH_CHUNK, 1000, closes,
                             (int)(sizeof closes / sizeof closes[0]), &nclose);
        if (n == -1) {
            dropped = 1;
            break;
        }
        if (n == -2)
            break;
        if (n == 0)
            nta_buf_puts(&out, ": idle\n\n"); /* finds a closed connection */
        if (mg_write(c, out.data, out.len) <= 0)
            break;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        nta_hub_observe_push(s->hub, closes, nclose,
                             (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000);
    }
    nta_buf_free(&out);
    nta_hub_client_leave(s->hub, dropped);
    return 200;
}

static int handle(struct mg_connection *c, void *cbdata)
{
    nta_http *s = cbdata;
    const struct mg_request_info *ri = mg_get_request_info(c);
    const char *uri = ri->local_uri_raw ? ri->local_uri_raw : ri->local_uri;
    if (uri == NULL || uri[0] != '/')
        return reply_error(c, 400, "bad request target", NULL);
    /* Dot segments are refused outright, however they were encoded. */
    if (strstr(uri, "/..") || strstr(uri, "\\"))
        return reply_error(c, 400, "path traversal refused", NULL);
    int get = strcmp(ri->request_method, "GET") == 0 || is_head(ri);
    int post = strcmp(ri->request_method, "POST") == 0;

    if (strncmp(uri, "/api/", 5) == 0 || strcmp(uri, "/metrics") == 0) {
        const char *what = uri + 5;
        int rc = check_access(s, c, ri);
        if (rc)
            return rc;
        if (strcmp(uri, "/metrics") == 0)
            return get ? api_metrics(s, c) : reply_error(c, 405, "use GET", "Allow: GET\r\n");
        if (strcmp(what, "reload") == 0)
            return post ? api_reload(s, c, ri)
                        : reply_error(c, 405, "use POST", "Allow: POST\r\n");
        if (!get)
            return reply_error(c, 405, "use GET", "Allow: GET\r\n");
        if (strcmp(what, "events") == 0)
            return api_events(s, c, ri);
        if (strcmp(what, "windows") == 0)
            return api_windows(s, c, ri);
        if (!strcmp(what, "status") || !strcmp(what, "alerts") || !strcmp(what, "rules"))
            return api_simple(s, c, ri, what);
        return reply_error(c, 404, "no such API", NULL);
    }
    if (!get)
        return reply_error(c, 405, "use GET", "Allow: GET\r\n");
    if (strcmp(uri, "/") == 0)
        return serve_file(s, c, "", "index.html");
    if (strncmp(uri, "/vendor/uplot/", 14) == 0)
        return serve_file(s, c, "node_modules/uplot/dist/", uri + 14);
    return serve_file(s, c, "", uri + 1);
}

/* civetweb's own messages (a client that went away mid-write, a malformed
 * request it answered with 400) are routine for a server on a network and
 * would drown the pipeline's log. */
static int quiet_log(const struct mg_connection *c, const char *msg)
{
    (void)c, (void)msg;
    return 1;
}

/* ---- lifecycle ---- */

/* The address a local connection reaches the server at: the bound one, or
 * loopback for a wildcard bind. */
static void self_address(nta_http *s, const listen_addr *a, long port)
{
    memset(&s->self, 0, sizeof s->self);
    if (a->v6) {
        struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&s->self;
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        inet_pton(AF_INET6, a->host, &v6->sin6_addr);
        if (IN6_IS_ADDR_UNSPECIFIED(&v6->sin6_addr))
            v6->sin6_addr = in6addr_loopback;
        s->self_len = sizeof *v6;
    } else {
        struct sockaddr_in *v4 = (struct sockaddr_in *)&s->self;
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        inet_pton(AF_INET, a->host, &v4->sin_addr);
        if (v4->sin_addr.s_addr == htonl(INADDR_ANY))
            v4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        s->self_len = sizeof *v4;
    }
}

typedef struct waker {
    const nta_http *s;
    atomic_int done;
} waker;

/* civetweb's mg_stop waits until its listening thread's poll() times out,
 * two seconds in 1.15; a connection ends the poll at once. Knocks until
 * mg_stop has returned. */
static void *knock(void *arg)
{
    waker *w = arg;
    while (!atomic_load(&w->done)) {
        int fd = socket(w->s->self.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd >= 0) {
            connect(fd, (const struct sockaddr *)&w->s->self, w->s->self_len);
            close(fd);
        }
        struct timespec ts = {.tv_sec = 0, .tv_nsec = 20 * 1000000L};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

nta_http *nta_http_attach(const nta_http_opts *o, nta_pipeline *p,
                          const nta_pipeline_conf *conf, const char *mode)
{
    if (o == NULL || o->listen == NULL)
        return NULL;
    listen_addr a;
    if (parse_listen(o->listen, &a) != 0)
        return NULL; /* nta_http_opts_check said so before */
    nta_http *s = calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    s->p = p;
    s->conf = conf;
    s->mode = mode;
    s->loopback = is_loopback(&a);
    const char *root = o->web_root ? o->web_root : NTA_WEB_DIR;
    if (realpath(root, s->web_root) == NULL) {
        fprintf(stderr, "nta: dashboard: web root %s not found; the dashboard is off\n", root);
        free(s);
        return NULL;
    }
    if (o->token && (s->token = strdup(o->token)) == NULL) {
        free(s);
        return NULL;
    }
    nta_hub_conf hc = {
        .history_ms = o->history_ms > 0 ? o->history_ms : 15 * 60 * 1000,
        .history_bytes = HISTORY_BYTES,
        .max_client_lag = MAX_CLIENT_LAG,
    };
    s->hub = nta_hub_create(&hc);
    if (s->hub == NULL) {
        free(s->token);
        free(s);
        return NULL;
    }
    char ports[96];
    if (a.v6)
        snprintf(ports, sizeof ports, "[%s]:%ld", a.host, a.port);
    else
        snprintf(ports, sizeof ports, "%s:%ld", a.host, a.port);
    const char *options[] = {
        "listening_ports", ports,
        "num_threads", NUM_THREADS,
        "request_timeout_ms", REQUEST_TIMEOUT_MS,
        "enable_keep_alive", "no",
        "max_request_size", "16384",
        "enable_directory_listing", "no",
        "access_control_allow_origin", "",
        NULL,
    };
    struct mg_callbacks cb = {.log_message = quiet_log};
    char errtext[256] = "";
    struct mg_error_data ed = {.text = errtext, .text_buffer_size = sizeof errtext};
    struct mg_init_data id = {.callbacks = &cb, .user_data = s, .configuration_options = options};
    mg_init_library(0);
    s->ctx = mg_start2(&id, &ed);
    if (s->ctx == NULL) {
        fprintf(stderr, "nta: dashboard: cannot listen on %s (%s); the pipeline runs without it\n",
                o->listen, errtext[0] ? errtext : "address in use?");
        mg_exit_library();
        nta_hub_destroy(s->hub);
        free(s->token);
        free(s);
        return NULL;
    }
    mg_set_request_handler(s->ctx, "**", handle, s);
    struct mg_server_port sp[4];
    int np = mg_get_server_ports(s->ctx, 4, sp);
    long port = np > 0 ? sp[0].port : a.port;
    self_address(s, &a, port);
    if (a.v6)
        fprintf(stderr, "nta: dashboard at http://[%s]:%ld/\n", a.host, port);
    else
        fprintf(stderr, "nta: dashboard at http://%s:%ld/\n", a.host, port);
    nta_pipeline_set_tap(p, nta_hub_publish, s->hub);
    return s;
}

void nta_http_set_rules(nta_http *s, const nta_http_rules *r)
{
    if (s == NULL)
        return;
    s->rules = *r;
    nta_hub_set_reload_available(s->hub, r->reload != NULL);
}

void nta_http_tick(nta_http *s, int64_t lag, const nta_producer_stats *prod, const char *note,
                   int64_t now_us)
{
    if (s == NULL)
        return;
    nta_hub_flush(s->hub);
    nta_hub_service_reload(s->hub, s->rules.reload, s->rules.ctx);
    if (now_us - s->last_status_us < STATUS_INTERVAL_US)
        return;
    s->last_status_us = now_us;
    const char *rules = NULL;
    if (s->rules.status_json) {
        if (s->rules_buf == NULL)
            s->rules_buf = malloc(RULES_STATUS_MAX);
        int n = s->rules_buf ? s->rules.status_json(s->rules.ctx, s->rules_buf,
                                                    RULES_STATUS_MAX) : -1;
        if (n > 0 && n < RULES_STATUS_MAX) {
            s->rules_buf[n] = '\0';
            rules = s->rules_buf;
        }
    }
    nta_hub_source src = {
        .p = s->p, .conf = s->conf, .mode = s->mode, .lag = lag, .prod = prod,
        .note = note, .rules_json = rules,
    };
    nta_hub_status(s->hub, &src, now_us);
}

void nta_http_detach(nta_http *s)
{
    if (s == NULL)
        return;
    nta_pipeline_set_tap(s->p, NULL, NULL);
    nta_hub_stop(s->hub);
    waker w = {.s = s};
    atomic_init(&w.done, 0);
    pthread_t t;
    int knocking = pthread_create(&t, NULL, knock, &w) == 0;
    mg_stop(s->ctx);
    if (knocking) {
        atomic_store(&w.done, 1);
        pthread_join(t, NULL);
    }
    mg_exit_library();
    nta_hub_destroy(s->hub);
    free(s->rules_buf);
    free(s->token);
    free(s);
}
