/*
 * test_deploy.c - the deployment files (docker/Dockerfile, docker/compose.yml,
 * the YAML files under docker/k8s) checked without a container engine:
 *
 *  - every YAML file parses (libyaml), every file the Dockerfile COPYs from
 *    the build context exists;
 *  - every environment variable the Dockerfile, compose and the manifests set
 *    for a canaryd container is one canaryd reads. The list is extracted from
 *    agent/config/config_env.c and agent/core/log.c by their documented marker: a C
 *    string literal holding exactly a variable's name ("CANARYD_BROKERS");
 *  - probes, ports and webhook URLs match the HTTP API (port
 *    CD_HTTP_DEFAULT_PORT, paths listed in include/canaryd/http_api.h), and
 *    /readyz decides no readiness (a sidecar has none, canaryd's own pod
 *    uses /healthz);
 *  - the controllers' wiring: Flagger's target named after its app selector
 *    and free of canaryd, the Canary pointing at it with webhook retries,
 *    config tracking disabled on canaryd's ConfigMap and Secret; Argo's
 *    Rollout with canaryMetadata / stableMetadata, the analysis naming the
 *    AnalysisTemplate and passing its arguments, inconclusiveLimit and
 *    consecutiveErrorLimit set; the native-sidecar variant;
 *  - Pod Security "restricted" on every pod template (seccomp RuntimeDefault,
 *    non-root, no privilege escalation, ALL capabilities dropped);
 *  - the ConfigMap's (YAML) and compose's configs carry config/sop.yaml's and
 *    config/demo.json's rules unchanged and pass check-config;
 *  - the runtime and build packages exist in Debian 12 (apt-cache; skipped
 *    with a message when apt has no package lists);
 *  - the image's exact command (ENTRYPOINT + CMD parsed from the Dockerfile)
 *    runs with the ConfigMap's config and the Deployment's environment
 *    against librdkafka's mock cluster in this process, consumes and commits
 *    a known stream, answers the Dockerfile's HEALTHCHECK, and stops cleanly
 *    on SIGTERM; and the command line beats the environment.
 *
 * Paths inside the image (/etc/canaryd, /var/lib/canaryd) are mapped into a
 * temporary folder; values a cluster would supply (the pod name, the
 * Secret, the brokers, the bind address) are replaced as each test says.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <regex.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../agent/config/config_internal.h"
#include "../wait_helpers.h"
#include "canaryd/http_api.h"
#include "http_receiver.c"
#include "kafka_mock.h"

/* CMakeLists.txt links libyaml into this test and defines CANARYD_HAVE_YAML
 * when pkg-config finds yaml-0.1 (tools/setup installs libyaml-dev). */
#ifdef CANARYD_HAVE_YAML
#include <yaml.h>
#define HAVE_YAML 1
#else
#define HAVE_YAML 0
#endif

#define SRC CANARYD_SOURCE_DIR "/"
#define MAX_VARS 32

/* ---- small helpers --------------------------------------------------------- */

/* Reads a whole file (also /proc files, whose size stat does not know). */
/* The whole file, which must exist (live_helpers.h's slurp gives "" for a
 * missing one). */
static char *slurp_existing(const char *path)
{
    cr_assert_eq(access(path, R_OK), 0, "cannot open %s", path);
    return slurp(path);
}

static bool in_list(const char *s, char list[][64], int n)
{
    for (int i = 0; i < n; i++)
        if (strcmp(list[i], s) == 0) return true;
    return false;
}

/* The variables canaryd reads: string literals "CANARYD_..." in the two files
 * that read them (the marker documented atop agent/config/config_env.c). */
static int read_vars(char vars[][64])
{
    static const char *const files[] = {SRC "agent/config/config_env.c", SRC "agent/core/log.c"};
    regex_t re;
    int n = 0;
    cr_assert_eq(regcomp(&re, "\"(CANARYD_[A-Z0-9_]+)\"", REG_EXTENDED), 0);
    for (size_t f = 0; f < 2; f++) {
        char *text = slurp_existing(files[f]);
        regmatch_t m[2];
        for (const char *p = text; regexec(&re, p, 2, m, 0) == 0; p += m[0].rm_eo) {
            char name[64];
            snprintf(name, sizeof(name), "%.*s", (int)(m[1].rm_eo - m[1].rm_so), p + m[1].rm_so);
            if (!in_list(name, vars, n) && n < MAX_VARS) snprintf(vars[n++], 64, "%s", name);
        }
        free(text);
    }
    regfree(&re);
    return n;
}

/* ---- the Dockerfile ------------------------------------------------------------ */

#define MAX_INSTR 64
typedef struct instr {
    char op[16];
    char *args; /* continuation lines joined */
} instr_t;

static int dockerfile(instr_t *out)
{
    char *text = slurp_existing(SRC "docker/Dockerfile");
    int n = 0;
    char *cur = NULL;
    size_t len = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        while (*line == ' ')
            line++;
        if (*line == '#' || !*line) continue;
        size_t l = strlen(line);
        bool cont = l > 0 && line[l - 1] == '\\';
        if (cont) line[--l] = '\0';
        cur = realloc(cur, len + l + 2);
        memcpy(cur + len, line, l + 1);
        len += l;
        cur[len++] = ' ';
        cur[len] = '\0';
        if (cont) continue;
        cr_assert_lt(n, MAX_INSTR);
        char *sp = strchr(cur, ' ');
        snprintf(out[n].op, sizeof(out[n].op), "%.*s", (int)(sp - cur), cur);
        out[n].args = strdup(sp + 1);
        n++;
        free(cur);
        cur = NULL;
        len = 0;
    }
    free(cur);
    free(text);
    return n;
}

static void free_instr(instr_t *in, int n)
{
    for (int i = 0; i < n; i++)
        free(in[i].args);
}

/* The JSON array of an exec-form instruction (ENTRYPOINT, CMD, HEALTHCHECK's CMD). */
static json_t *exec_form(const char *args)
{
    json_error_t e;
    json_t *a = json_loads(args, JSON_DECODE_ANY, &e);
    cr_assert(json_is_array(a), "not an exec-form array: %s (%s)", args, e.text);
    for (size_t i = 0; i < json_array_size(a); i++)
        cr_assert(json_is_string(json_array_get(a, i)));
    return a;
}

static const instr_t *find(const instr_t *in, int n, const char *op)
{
    const instr_t *last = NULL;
    for (int i = 0; i < n; i++)
        if (strcmp(in[i].op, op) == 0) last = &in[i];
    cr_assert_not_null(last, "no %s in docker/Dockerfile", op);
    return last;
}

Test(dockerfile, every_copied_file_exists)
{
    instr_t in[MAX_INSTR];
    int n = dockerfile(in), copies = 0;
    char *ignore = slurp_existing(SRC "docker/Dockerfile.dockerignore");
    for (int i = 0; i < n; i++) {
        if (strcmp(in[i].op, "COPY") != 0 || strstr(in[i].args, "--from=")) continue;
        char *words[16];
        int w = 0;
        for (char *t = strtok(in[i].args, " "); t && w < 16; t = strtok(NULL, " "))
            words[w++] = t;
        cr_assert_geq(w, 2, "COPY needs a source and a destination");
        for (int k = 0; k < w - 1; k++) {
            char p[512];
            struct stat st;
            snprintf(p, sizeof(p), SRC "%s", words[k]);
            cr_assert_eq(stat(p, &st), 0, "COPY %s: not in the repository", words[k]);
            /* ... and in the build context docker/Dockerfile.dockerignore lets through. */
            char allow[600], allow_dir[600];
            snprintf(allow, sizeof(allow), "\n!%s\n", words[k]);
            snprintf(allow_dir, sizeof(allow_dir), "\n!%s/\n", words[k]);
            cr_assert(strstr(ignore, allow) || strstr(ignore, allow_dir),
                      "COPY %s: excluded by docker/Dockerfile.dockerignore", words[k]);
            copies++;
        }
    }
    cr_assert_geq(copies, 8, "the build copies the sources and the configs");
    free(ignore);
    free_instr(in, n);
}

Test(dockerfile, image_layout)
{
    instr_t in[MAX_INSTR];
    int n = dockerfile(in), froms = 0;
    for (int i = 0; i < n; i++)
        froms += strcmp(in[i].op, "FROM") == 0;
    cr_assert_eq(froms, 2, "multi-stage: build and runtime");
    /* Both bases pinned by digest (tools/pin-base-images moves the pins). */
    regex_t re;
    cr_assert_eq(regcomp(&re, "^debian:bookworm(-slim)?@sha256:[0-9a-f]{64}( |$)", REG_EXTENDED),
                 0);
    const char *build_from = NULL, *run_from = NULL;
    for (int i = 0; i < n; i++) {
        if (strcmp(in[i].op, "FROM") != 0) continue;
        cr_assert_eq(regexec(&re, in[i].args, 0, NULL, 0), 0, "FROM %s: not pinned by digest",
                     in[i].args);
        if (!build_from)
            build_from = in[i].args;
        else
            run_from = in[i].args;
    }
    regfree(&re);
    cr_assert_eq(strncmp(build_from, "debian:bookworm@", 16), 0, "%s", build_from);
    cr_assert_eq(strncmp(run_from, "debian:bookworm-slim@", 21), 0, "%s", run_from);
    cr_assert_str_eq(find(in, n, "USER")->args, "10001:10001 ", "non-root, numeric");
    cr_assert_not_null(strstr(find(in, n, "VOLUME")->args, "\"/var/lib/canaryd\""));
    char port[16];
    snprintf(port, sizeof(port), "%d ", CD_HTTP_DEFAULT_PORT);
    cr_assert_str_eq(find(in, n, "EXPOSE")->args, port);
    /* tini (Debian's) is PID 1 and reaps orphans; canaryd run under it. */
    json_t *ep = exec_form(find(in, n, "ENTRYPOINT")->args);
    cr_assert_eq(json_array_size(ep), 4);
    cr_assert_str_eq(json_string_value(json_array_get(ep, 0)), "/usr/bin/tini");
    cr_assert_str_eq(json_string_value(json_array_get(ep, 1)), "--");
    cr_assert_str_eq(json_string_value(json_array_get(ep, 2)), "canaryd");
    cr_assert_str_eq(json_string_value(json_array_get(ep, 3)), "run");
    json_decref(ep);
    /* The build stage installs with cmake --install; the runtime stage
     * copies that staging folder whole, and nothing else from the build. */
    int stage = 0, installs = 0, build_copies = 0;
    bool labels[3] = {false, false, false};
    static const char *const LABELS[] = {
        "org.opencontainers.image.title=", "org.opencontainers.image.version=",
        "org.opencontainers.image.revision="};
    for (int i = 0; i < n; i++) {
        if (strcmp(in[i].op, "FROM") == 0) stage++;
        if (strcmp(in[i].op, "RUN") == 0 && strstr(in[i].args, "cmake --install build")) {
            cr_assert_eq(stage, 1, "cmake --install in the build stage");
            cr_assert_not_null(strstr(in[i].args, "DESTDIR=/staging"));
            installs++;
        }
        if (strcmp(in[i].op, "COPY") == 0 && strstr(in[i].args, "--from=")) {
            cr_assert_str_eq(in[i].args, "--from=build /staging/ / ");
            build_copies++;
        }
        /* No test tool in the runtime stage. */
        if (stage == 2)
            cr_assert_null(strstr(in[i].args, "mock-kafka"), "%s %s", in[i].op, in[i].args);
        if (stage == 2 && strcmp(in[i].op, "LABEL") == 0)
            for (int k = 0; k < 3; k++)
                labels[k] |= strstr(in[i].args, LABELS[k]) != NULL;
    }
    cr_assert_eq(installs, 1);
    cr_assert_eq(build_copies, 1);
    for (int k = 0; k < 3; k++)
        cr_assert(labels[k], "runtime stage: no LABEL %s", LABELS[k]);
    /* The healthcheck asks /healthz with what the image has (bash, coreutils). */
    const char *hc = find(in, n, "HEALTHCHECK")->args;
    json_t *cmd = exec_form(strstr(hc, "CMD [") + 4);
    cr_assert_not_null(strstr(json_string_value(json_array_get(cmd, 4)), "GET /healthz "));
    json_decref(cmd);
    free_instr(in, n);
}

/* Packages of every `apt-get install` in the Dockerfile. */
static int apt_packages(char pk[][64])
{
    instr_t in[MAX_INSTR];
    int n = dockerfile(in), np = 0;
    for (int i = 0; i < n; i++) {
        char *p = strstr(in[i].args, "apt-get install");
        if (strcmp(in[i].op, "RUN") != 0 || !p) continue;
        for (char *t = strtok(p + 15, " "); t && strcmp(t, "&&") != 0; t = strtok(NULL, " "))
            if (t[0] != '-' && np < 64) snprintf(pk[np++], 64, "%s", t);
    }
    free_instr(in, n);
    return np;
}

Test(dockerfile, packages_exist_in_debian_12)
{
    char pk[64][64];
    int np = apt_packages(pk);
    cr_assert_geq(np, 17, "build and runtime package lists");
    DIR *d = opendir("/var/lib/apt/lists");
    bool lists = false;
    for (struct dirent *e; d && (e = readdir(d));)
        lists |= strstr(e->d_name, "_Packages") != NULL;
    if (d) closedir(d);
    if (!lists) cr_skip_test("apt has no package lists (run apt-get update): packages not checked");
    FILE *os = fopen("/etc/os-release", "r");
    char osr[2048] = "";
    if (os) {
        size_t got = fread(osr, 1, sizeof(osr) - 1, os);
        osr[got] = '\0';
        fclose(os);
    }
    if (!strstr(osr, "VERSION_CODENAME=bookworm"))
        cr_skip_test("not Debian 12 (bookworm): apt-cache would answer for another release");
    /* One apt-cache call for all (it fails if any is unknown), then one per
     * package only to name the missing one. */
    char cmd[4096] = "apt-cache show --no-all-versions";
    size_t len = strlen(cmd);
    for (int i = 0; i < np; i++)
        len += (size_t)snprintf(cmd + len, sizeof(cmd) - len, " %s", pk[i]);
    snprintf(cmd + len, sizeof(cmd) - len, " >/dev/null 2>&1");
    if (system(cmd) != 0) {
        for (int i = 0; i < np; i++) {
            snprintf(cmd, sizeof(cmd), "apt-cache show --no-all-versions %.63s >/dev/null 2>&1",
                     pk[i]);
            cr_assert_eq(system(cmd), 0, "package %s is not in Debian 12's lists", pk[i]);
        }
        cr_assert_fail("apt-cache show failed for the list, but not for any one package");
    }
    /* The runtime stage has the libraries the agent links. */
    static const char *const runtime[] = {
        "librdkafka1", "libjansson4", "libcurl4", "libhiredis0.14", "libmicrohttpd12", "libssl3",
        "libyaml-0-2", "tini",        NULL};
    for (int k = 0; runtime[k]; k++) {
        bool found = false;
        for (int i = 0; i < np; i++)
            found |= strcmp(pk[i], runtime[k]) == 0;
        cr_assert(found, "runtime package %s missing", runtime[k]);
    }
}

/* `cmake --install` of this build tree: the agent, the rules and the
 * documentation; the mock broker only with --component tools. */
static int run_install(const char *prefix, const char *component)
{
    char *argv[] = {"cmake",
                    "--install",
                    CANARYD_BINARY_DIR,
                    "--prefix",
                    (char *)prefix,
                    component ? "--component" : NULL,
                    (char *)component,
                    NULL};
    pid_t pid;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    cr_assert_eq(posix_spawnp(&pid, "cmake", &fa, NULL, argv, environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    int st;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int rm_tree(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

Test(dockerfile, cmake_install_layout)
{
    char dir[] = "/tmp/cd_install_XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    cr_assert_eq(run_install(dir, NULL), 0);
    static const char *const want[] = {"bin/canaryd",
                                       "etc/canaryd/sop.yaml",
                                       "etc/canaryd/sop.json",
                                       "etc/canaryd/demo.json",
                                       "share/doc/canaryd/README.md",
                                       "share/doc/canaryd/config.md",
                                       "share/doc/canaryd/operations.md",
                                       NULL};
    char p[512];
    struct stat sb;
    for (int i = 0; want[i]; i++) {
        snprintf(p, sizeof(p), "%s/%s", dir, want[i]);
        cr_assert_eq(stat(p, &sb), 0, "cmake --install did not install %s", want[i]);
    }
    snprintf(p, sizeof(p), "%s/bin/canaryd", dir);
    cr_assert(stat(p, &sb) == 0 && (sb.st_mode & S_IXUSR), "bin/canaryd is not executable");
    snprintf(p, sizeof(p), "%s/bin/canaryd-mock-kafka", dir);
    cr_assert_neq(stat(p, &sb), 0, "the test broker is installed by default");
    cr_assert_eq(run_install(dir, "tools"), 0);
    cr_assert_eq(stat(p, &sb), 0, "--component tools installs canaryd-mock-kafka");
    nftw(dir, rm_tree, 8, FTW_DEPTH | FTW_PHYS);
}

/* ---- YAML ---------------------------------------------------------------------- */

#if HAVE_YAML
#define MAX_DOCS 8
typedef struct yfile {
    yaml_document_t doc[MAX_DOCS];
    int n;
} yfile_t;

/* Parses every document of a file; fails the test on a syntax error. */
static void yload(const char *path, yfile_t *y)
{
    char *text = slurp_existing(path);
    yaml_parser_t p;
    yaml_parser_initialize(&p);
    yaml_parser_set_input_string(&p, (const unsigned char *)text, strlen(text));
    y->n = 0;
    for (;;) {
        cr_assert_lt(y->n, MAX_DOCS);
        yaml_document_t *d = &y->doc[y->n];
        cr_assert(yaml_parser_load(&p, d), "%s: line %zu: %s", path, p.problem_mark.line + 1,
                  p.problem ? p.problem : "?");
        if (!yaml_document_get_root_node(d)) {
            yaml_document_delete(d);
            break;
        }
        y->n++;
    }
    yaml_parser_delete(&p);
    free(text);
    cr_assert_gt(y->n, 0, "%s: no document", path);
}

static void yfree(yfile_t *y)
{
    for (int i = 0; i < y->n; i++)
        yaml_document_delete(&y->doc[i]);
}

static yaml_node_t *yget(yaml_document_t *d, yaml_node_t *m, const char *key)
{
    if (!m || m->type != YAML_MAPPING_NODE) return NULL;
    for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(d, p->key);
        if (k->type == YAML_SCALAR_NODE && strcmp((char *)k->data.scalar.value, key) == 0)
            return yaml_document_get_node(d, p->value);
    }
    return NULL;
}

static const char *ystr(yaml_node_t *n)
{
    return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static int ylen(yaml_node_t *n)
{
    return n && n->type == YAML_SEQUENCE_NODE
               ? (int)(n->data.sequence.items.top - n->data.sequence.items.start)
               : 0;
}

static yaml_node_t *yat(yaml_document_t *d, yaml_node_t *n, int i)
{
    return yaml_document_get_node(d, n->data.sequence.items.start[i]);
}

/* A path of keys: yp(d, root, "spec", "template", NULL). */
static yaml_node_t *yp(yaml_document_t *d, yaml_node_t *n, ...)
{
    va_list ap;
    va_start(ap, n);
    for (const char *k; n && (k = va_arg(ap, const char *));)
        n = yget(d, n, k);
    va_end(ap);
    return n;
}

static const char *const YAML_FILES[] = {"docker/compose.yml",
                                         "docker/k8s/configmap.yaml",
                                         "docker/k8s/secret.yaml",
                                         "docker/k8s/deployment.yaml",
                                         "docker/k8s/deployment-native-sidecar.yaml",
                                         "docker/k8s/canaryd.yaml",
                                         "docker/k8s/analysistemplate.yaml",
                                         "docker/k8s/flagger/checkout.yaml",
                                         "docker/k8s/flagger/canary.yaml",
                                         "docker/k8s/argo/rollout.yaml",
                                         NULL};

/* The manifests that run canaryd: the plain sidecar, the native sidecar,
 * and the controllers' own Deployment. */
static const char *const CANARYD_FILES[] = {"docker/k8s/deployment.yaml",
                                            "docker/k8s/deployment-native-sidecar.yaml",
                                            "docker/k8s/canaryd.yaml", NULL};

/* The canaryd containers of a file's documents: (doc, container) pairs. */
typedef struct ctr {
    yaml_document_t *d;
    yaml_node_t *c;
} ctr_t;

static void collect(yaml_document_t *d, yaml_node_t *n, ctr_t *out, int *nout)
{
    if (n->type == YAML_MAPPING_NODE) {
        for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top;
             p++) {
            const char *k = ystr(yaml_document_get_node(d, p->key));
            yaml_node_t *v = yaml_document_get_node(d, p->value);
            if (k && (strcmp(k, "containers") == 0 || strcmp(k, "initContainers") == 0)) {
                for (int i = 0; i < ylen(v); i++) {
                    const char *img = ystr(yget(d, yat(d, v, i), "image"));
                    if (img && strncmp(img, "canaryd", 7) == 0 && *nout < 8)
                        out[(*nout)++] = (ctr_t){d, yat(d, v, i)};
                }
            } else {
                collect(d, v, out, nout);
            }
        }
    } else if (n->type == YAML_SEQUENCE_NODE) {
        for (int i = 0; i < ylen(n); i++)
            collect(d, yat(d, n, i), out, nout);
    }
}

Test(yaml, every_file_parses)
{
    int docs = 0;
    for (int i = 0; YAML_FILES[i]; i++) {
        char p[512];
        yfile_t y;
        snprintf(p, sizeof(p), SRC "%s", YAML_FILES[i]);
        yload(p, &y);
        docs += y.n;
        yfree(&y);
    }
    cr_assert_eq(docs, 13,
                 "compose 1, configmap 1, secret 1, deployment 2, native sidecar 2, canaryd 2, "
                 "analysis 1, flagger 2, argo 1");
    /* Every *.yaml under docker/k8s and its folders is in the list above. */
    static const char *const dirs[] = {"docker/k8s", "docker/k8s/flagger", "docker/k8s/argo", NULL};
    for (int k = 0; dirs[k]; k++) {
        char dp[512];
        snprintf(dp, sizeof(dp), SRC "%s", dirs[k]);
        DIR *d = opendir(dp);
        cr_assert_not_null(d, "%s", dp);
        for (struct dirent *e; (e = readdir(d));) {
            if (!strstr(e->d_name, ".yaml")) continue;
            char rel[300];
            bool listed = false;
            snprintf(rel, sizeof(rel), "%s/%s", dirs[k], e->d_name);
            for (int i = 0; YAML_FILES[i]; i++)
                listed |= strcmp(YAML_FILES[i], rel) == 0;
            cr_assert(listed, "%s is not checked by this suite", rel);
        }
        closedir(d);
    }
}

Test(yaml, every_variable_set_is_one_canaryd_reads)
{
    char vars[MAX_VARS][64], seen[MAX_VARS][64];
    int nv = read_vars(vars), ns = 0;
    cr_assert_eq(nv, 10, "9 overrides in config_env.c + CANARYD_LOG_LEVEL in log.c, got %d", nv);
    cr_assert(in_list("CANARYD_GROUP_INSTANCE_ID", vars, nv));
    cr_assert(in_list("CANARYD_LOG_LEVEL", vars, nv));
    cr_assert(in_list("CANARYD_SERVICE", vars, nv));
    cr_assert(in_list("CANARYD_WEBHOOK_URL", vars, nv));

    /* Kubernetes: every canaryd container's env. */
    yfile_t y;
    for (int f = 0; CANARYD_FILES[f]; f++) {
        char path[512];
        snprintf(path, sizeof(path), SRC "%s", CANARYD_FILES[f]);
        yload(path, &y);
        ctr_t c[8];
        int nc = 0;
        for (int i = 0; i < y.n; i++)
            collect(&y.doc[i], yaml_document_get_root_node(&y.doc[i]), c, &nc);
        cr_assert_eq(nc, 1, "%s: one canaryd container", CANARYD_FILES[f]);
        yaml_node_t *env = yget(c[0].d, c[0].c, "env");
        cr_assert_gt(ylen(env), 0);
        for (int i = 0; i < ylen(env); i++) {
            const char *name = ystr(yget(c[0].d, yat(c[0].d, env, i), "name"));
            cr_assert(name && in_list(name, vars, nv), "%s sets %s, which canaryd does not read",
                      CANARYD_FILES[f], name ? name : "(null)");
            if (!in_list(name, seen, ns)) snprintf(seen[ns++], 64, "%s", name);
        }
        yfree(&y);
    }

    /* Compose: the services running the canaryd image. */
    yload(SRC "docker/compose.yml", &y);
    yaml_node_t *svcs = yp(&y.doc[0], yaml_document_get_root_node(&y.doc[0]), "services", NULL);
    cr_assert_not_null(svcs);
    int canaryd_services = 0;
    for (yaml_node_pair_t *p = svcs->data.mapping.pairs.start; p < svcs->data.mapping.pairs.top;
         p++) {
        yaml_node_t *s = yaml_document_get_node(&y.doc[0], p->value);
        const char *img = ystr(yget(&y.doc[0], s, "image"));
        if (!img || strncmp(img, "canaryd", 7) != 0) continue;
        canaryd_services++;
        yaml_node_t *e = yget(&y.doc[0], s, "environment");
        if (!e) continue;
        cr_assert_eq(e->type, YAML_MAPPING_NODE, "compose environment as a mapping");
        for (yaml_node_pair_t *q = e->data.mapping.pairs.start; q < e->data.mapping.pairs.top;
             q++) {
            const char *name = ystr(yaml_document_get_node(&y.doc[0], q->key));
            cr_assert(in_list(name, vars, nv), "compose.yml sets %s, which canaryd does not read",
                      name);
            if (!in_list(name, seen, ns)) snprintf(seen[ns++], 64, "%s", name);
        }
    }
    cr_assert_eq(canaryd_services, 3, "two coordinated agents and the simulator");
    yfree(&y);

    /* The Dockerfile's ENV. */
    instr_t in[MAX_INSTR];
    int n = dockerfile(in);
    for (int i = 0; i < n; i++) {
        if (strcmp(in[i].op, "ENV") != 0) continue;
        char name[64];
        snprintf(name, sizeof(name), "%.*s", (int)strcspn(in[i].args, "= "), in[i].args);
        cr_assert(in_list(name, vars, nv), "the Dockerfile sets %s, which canaryd does not read",
                  name);
    }
    free_instr(in, n);
    /* Between them, the manifests use every variable. */
    for (int i = 0; i < nv; i++)
        cr_assert(in_list(vars[i], seen, ns), "%s is never set", vars[i]);
}

/* "http://host:8686/path" -> true when the port is the API's and the path is
 * one include/canaryd/http_api.h lists. */
static void api_url(const char *url, const char *want_path)
{
    char port[16];
    snprintf(port, sizeof(port), ":%d/", CD_HTTP_DEFAULT_PORT);
    const char *p = strstr(url, port);
    cr_assert_not_null(p, "%s: not port %d", url, CD_HTTP_DEFAULT_PORT);
    cr_assert_str_eq(p + strlen(port) - 1, want_path);
}

static void api_has_path(const char *path)
{
    char *h = slurp_existing(SRC "include/canaryd/http_api.h");
    char needle[128];
    snprintf(needle, sizeof(needle), " %s ", path);
    cr_assert_not_null(strstr(h, needle), "%s is not an endpoint of http_api.h", path);
    free(h);
}

static void probe(yaml_document_t *d, yaml_node_t *c, const char *which, const char *path)
{
    yaml_node_t *g = yp(d, c, which, "httpGet", NULL);
    cr_assert_not_null(g, "%s.httpGet missing", which);
    cr_assert_str_eq(ystr(yget(d, g, "path")), path);
    cr_assert_eq(atoi(ystr(yget(d, g, "port"))), CD_HTTP_DEFAULT_PORT);
    api_has_path(path);
}

/* Number of containers (and init containers) of the pod spec that holds c. */
static int pod_containers(yaml_document_t *d, yaml_node_t *root)
{
    yaml_node_t *ps = yp(d, root, "spec", "template", "spec", NULL);
    return ylen(yget(d, ps, "containers")) + ylen(yget(d, ps, "initContainers"));
}

Test(yaml, probes_ports_and_urls_match_the_api)
{
    yfile_t y;
    char svcname[64] = "";
    for (int f = 0; CANARYD_FILES[f]; f++) {
        char path[512];
        snprintf(path, sizeof(path), SRC "%s", CANARYD_FILES[f]);
        yload(path, &y);
        ctr_t c[8];
        int nc = 0;
        collect(&y.doc[0], yaml_document_get_root_node(&y.doc[0]), c, &nc);
        cr_assert_eq(nc, 1, "%s", CANARYD_FILES[f]);
        probe(c[0].d, c[0].c, "livenessProbe", "/healthz");
        probe(c[0].d, c[0].c, "startupProbe", "/healthz");
        /* /readyz fails while canaryd lags: it must never decide readiness.
         * Sharing a pod with the application, canaryd has no readiness probe
         * at all (the pod would leave the application's Service); in a pod
         * of its own, readiness is /healthz (out of its Service, the
         * controllers' calls would fail). */
        bool shared = pod_containers(c[0].d, yaml_document_get_root_node(&y.doc[0])) > 1;
        if (shared)
            cr_assert_null(yget(c[0].d, c[0].c, "readinessProbe"),
                           "%s: canaryd shares the application's pod: no readinessProbe",
                           CANARYD_FILES[f]);
        else
            probe(c[0].d, c[0].c, "readinessProbe", "/healthz");
        yaml_node_t *ports = yget(c[0].d, c[0].c, "ports");
        cr_assert_eq(ylen(ports), 1);
        cr_assert_eq(atoi(ystr(yget(c[0].d, yat(c[0].d, ports, 0), "containerPort"))),
                     CD_HTTP_DEFAULT_PORT);
        yaml_node_t *env = yget(c[0].d, c[0].c, "env");
        for (int i = 0; i < ylen(env); i++) {
            yaml_node_t *e = yat(c[0].d, env, i);
            if (strcmp(ystr(yget(c[0].d, e, "name")), "CANARYD_HTTP_BIND") == 0)
                cr_assert_str_eq(ystr(yget(c[0].d, e, "value")), "0.0.0.0:8686");
        }
        /* The Service the controllers call selects canaryd's pods. */
        cr_assert_eq(y.n, 2, "%s: the workload and its Service", CANARYD_FILES[f]);
        yaml_node_t *svc = yaml_document_get_root_node(&y.doc[1]);
        cr_assert_str_eq(ystr(yget(&y.doc[1], svc, "kind")), "Service");
        yaml_node_t *sp = yp(&y.doc[1], svc, "spec", "ports", NULL);
        cr_assert_eq(atoi(ystr(yget(&y.doc[1], yat(&y.doc[1], sp, 0), "targetPort"))),
                     CD_HTTP_DEFAULT_PORT);
        yaml_node_t *sel = yp(&y.doc[1], svc, "spec", "selector", NULL);
        yaml_node_t *pl = yp(&y.doc[0], yaml_document_get_root_node(&y.doc[0]), "spec", "template",
                             "metadata", "labels", NULL);
        cr_assert(sel && sel->type == YAML_MAPPING_NODE &&
                  sel->data.mapping.pairs.top > sel->data.mapping.pairs.start);
        for (yaml_node_pair_t *q = sel->data.mapping.pairs.start; q < sel->data.mapping.pairs.top;
             q++) {
            const char *k = ystr(yaml_document_get_node(&y.doc[1], q->key));
            const char *v = ystr(yaml_document_get_node(&y.doc[1], q->value));
            const char *have = ystr(yget(&y.doc[0], pl, k));
            cr_assert(have && strcmp(have, v) == 0, "%s: Service selects %s=%s, pods have %s",
                      CANARYD_FILES[f], k, v, have ? have : "nothing");
        }
        if (strcmp(CANARYD_FILES[f], "docker/k8s/canaryd.yaml") == 0)
            snprintf(svcname, sizeof(svcname), "%s",
                     ystr(yp(&y.doc[1], svc, "metadata", "name", NULL)));
        yfree(&y);
    }
    cr_assert_str_eq(svcname, "checkout-canaryd");

    /* Argo Rollouts: web provider on /api/v1/verdict, the verdict by jsonPath. */
    yload(SRC "docker/k8s/analysistemplate.yaml", &y);
    yaml_document_t *d = &y.doc[0];
    yaml_node_t *m = yat(d, yp(d, yaml_document_get_root_node(d), "spec", "metrics", NULL), 0);
    /* the rollout's release passed along (issue 10, item 6): the agent
     * answers for that release only */
    api_url(ystr(yp(d, m, "provider", "web", "url", NULL)),
            "/api/v1/verdict?release={{args.release}}");
    yaml_node_t *targs = yp(d, yaml_document_get_root_node(d), "spec", "args", NULL);
    bool has_release = false;
    for (int i = 0; i < ylen(targs); i++)
        if (strcmp(ystr(yget(d, yat(d, targs, i), "name")), "release") == 0) has_release = true;
    cr_assert(has_release, "spec.args has no \"release\"");
    char host[80];
    snprintf(host, sizeof(host), "//%s.", svcname);
    cr_assert_not_null(strstr(ystr(yp(d, m, "provider", "web", "url", NULL)), host));
    cr_assert_str_eq(ystr(yp(d, m, "provider", "web", "jsonPath", NULL)), "{$.verdict}");
    cr_assert_str_eq(ystr(yget(d, m, "failureCondition")), "result == \"ROLLBACK\"");
    cr_assert_str_eq(ystr(yget(d, m, "successCondition")),
                     "result == \"HEALTHY\" || result == \"PROMOTE\"");
    api_has_path("/api/v1/verdict");
    yfree(&y);

    /* Flagger: rollback and confirm-promotion hooks, with retries. */
    yload(SRC "docker/k8s/flagger/canary.yaml", &y);
    d = &y.doc[0];
    yaml_node_t *hooks =
        yp(d, yaml_document_get_root_node(d), "spec", "analysis", "webhooks", NULL);
    cr_assert_eq(ylen(hooks), 2);
    for (int i = 0; i < 2; i++) {
        yaml_node_t *h = yat(d, hooks, i);
        const char *type = ystr(yget(d, h, "type")), *url = ystr(yget(d, h, "url"));
        cr_assert(type && url, "webhook %d: type and url", i);
        cr_assert(strcmp(type, "rollback") == 0 || strcmp(type, "confirm-promotion") == 0, "%s",
                  type);
        char want[64];
        snprintf(want, sizeof(want), "/api/v1/flagger/%.40s", type);
        api_url(url, want);
        api_has_path(want);
        cr_assert_not_null(strstr(url, host), "%s does not call the Service %s", url, svcname);
        /* Flagger retries a webhook only when it sets retries. */
        const char *r = ystr(yget(d, h, "retries"));
        cr_assert(r && atoi(r) > 0, "webhook %s: no retries", type);
    }
    yfree(&y);
}

/* Every pod template of every manifest passes Pod Security "restricted":
 * pod-level runAsNonRoot and seccomp RuntimeDefault, and every container
 * and init container forbids privilege escalation, drops ALL capabilities
 * and sets seccomp RuntimeDefault itself. */
Test(yaml, pod_security_restricted)
{
    int pods = 0, containers = 0;
    for (int f = 0; YAML_FILES[f]; f++) {
        if (strncmp(YAML_FILES[f], "docker/k8s/", 11) != 0) continue;
        char path[512];
        yfile_t y;
        snprintf(path, sizeof(path), SRC "%s", YAML_FILES[f]);
        yload(path, &y);
        for (int i = 0; i < y.n; i++) {
            yaml_document_t *d = &y.doc[i];
            yaml_node_t *ps =
                yp(d, yaml_document_get_root_node(d), "spec", "template", "spec", NULL);
            if (!ps) continue;
            pods++;
            yaml_node_t *psc = yget(d, ps, "securityContext");
            cr_assert_str_eq(ystr(yget(d, psc, "runAsNonRoot")), "true", "%s", YAML_FILES[f]);
            cr_assert_str_eq(ystr(yp(d, psc, "seccompProfile", "type", NULL)), "RuntimeDefault",
                             "%s: pod seccompProfile", YAML_FILES[f]);
            static const char *const lists[] = {"containers", "initContainers"};
            for (int l = 0; l < 2; l++) {
                yaml_node_t *cs = yget(d, ps, lists[l]);
                for (int k = 0; k < ylen(cs); k++) {
                    yaml_node_t *sc = yget(d, yat(d, cs, k), "securityContext");
                    const char *name = ystr(yget(d, yat(d, cs, k), "name"));
                    cr_assert_not_null(sc, "%s: container %s has no securityContext", YAML_FILES[f],
                                       name);
                    cr_assert_str_eq(ystr(yget(d, sc, "allowPrivilegeEscalation")), "false",
                                     "%s: %s", YAML_FILES[f], name);
                    cr_assert_str_eq(ystr(yp(d, sc, "seccompProfile", "type", NULL)),
                                     "RuntimeDefault", "%s: %s", YAML_FILES[f], name);
                    yaml_node_t *drop = yp(d, sc, "capabilities", "drop", NULL);
                    bool all = false;
                    for (int q = 0; q < ylen(drop); q++)
                        all |= strcmp(ystr(yat(d, drop, q)), "ALL") == 0;
                    cr_assert(all, "%s: %s does not drop ALL capabilities", YAML_FILES[f], name);
                    containers++;
                }
            }
        }
        yfree(&y);
    }
    cr_assert_eq(pods, 5, "deployment, native sidecar, canaryd, flagger target, rollout");
    cr_assert_eq(containers, 7, "2 + 2 + canaryd + flagger target + rollout");
}

/* The annotation Flagger reads (pkg/canary/config_tracker.go:
 * configIsDisabled, a value starting with "disable"). */
static void config_tracking_disabled(const char *file)
{
    yfile_t y;
    yload(file, &y);
    yaml_document_t *d = &y.doc[0];
    const char *v = ystr(yp(d, yaml_document_get_root_node(d), "metadata", "annotations",
                            "flagger.app/config-tracking", NULL));
    cr_assert(v && strcmp(v, "disabled") == 0, "%s: config tracking not disabled", file);
    yfree(&y);
}

/* Flagger: the target is named after its app selector, holds only the
 * application (Flagger copies its template into <name>-primary), and the
 * Canary points at it; canaryd's ConfigMap and Secret are not tracked. */
Test(yaml, flagger_wiring)
{
    yfile_t t, c;
    yload(SRC "docker/k8s/flagger/checkout.yaml", &t);
    yload(SRC "docker/k8s/flagger/canary.yaml", &c);
    yaml_document_t *td = &t.doc[0], *cd = &c.doc[0];
    yaml_node_t *tr = yaml_document_get_root_node(td), *cr = yaml_document_get_root_node(cd);
    cr_assert_str_eq(ystr(yget(td, tr, "kind")), "Deployment");
    const char *name = ystr(yp(td, tr, "metadata", "name", NULL));
    cr_assert_str_eq(ystr(yp(td, tr, "spec", "selector", "matchLabels", "app", NULL)), name,
                     "Flagger wants the target named after its app selector");
    cr_assert_str_eq(ystr(yp(td, tr, "spec", "template", "metadata", "labels", "app", NULL)), name);
    cr_assert_str_eq(ystr(yget(cd, cr, "kind")), "Canary");
    cr_assert_str_eq(ystr(yget(cd, cr, "apiVersion")), "flagger.app/v1beta1");
    cr_assert_str_eq(ystr(yp(cd, cr, "spec", "targetRef", "name", NULL)), name);
    cr_assert_str_eq(ystr(yp(cd, cr, "spec", "targetRef", "kind", NULL)), "Deployment");
    ctr_t ctr[8];
    int nc = 0;
    collect(td, tr, ctr, &nc);
    cr_assert_eq(nc, 0, "canaryd in Flagger's target would run in every primary pod too");
    cr_assert_eq(pod_containers(td, tr), 1);
    yfree(&t);
    yfree(&c);
    config_tracking_disabled(SRC "docker/k8s/configmap.yaml");
    config_tracking_disabled(SRC "docker/k8s/secret.yaml");
}

/* Argo Rollouts: canary and stable pods labelled apart, the background
 * analysis names the AnalysisTemplate and passes every argument it needs,
 * and the template tolerates ANALYZING and transient errors. */
Test(yaml, argo_wiring)
{
    yfile_t r, a;
    yload(SRC "docker/k8s/argo/rollout.yaml", &r);
    yload(SRC "docker/k8s/analysistemplate.yaml", &a);
    yaml_document_t *rd = &r.doc[0], *ad = &a.doc[0];
    yaml_node_t *rr = yaml_document_get_root_node(rd), *ar = yaml_document_get_root_node(ad);
    cr_assert_str_eq(ystr(yget(rd, rr, "kind")), "Rollout");
    cr_assert_str_eq(ystr(yget(rd, rr, "apiVersion")), "argoproj.io/v1alpha1");
    yaml_node_t *canary = yp(rd, rr, "spec", "strategy", "canary", NULL);
    const char *cl = ystr(yp(rd, canary, "canaryMetadata", "labels", "role", NULL));
    const char *sl = ystr(yp(rd, canary, "stableMetadata", "labels", "role", NULL));
    cr_assert(cl && sl && strcmp(cl, sl) != 0, "canaryMetadata and stableMetadata label apart");
    /* selector matches the pod template */
    cr_assert_str_eq(ystr(yp(rd, rr, "spec", "selector", "matchLabels", "app", NULL)),
                     ystr(yp(rd, rr, "spec", "template", "metadata", "labels", "app", NULL)));
    yaml_node_t *an = yget(rd, canary, "analysis");
    cr_assert_str_eq(ystr(yget(rd, yat(rd, yget(rd, an, "templates"), 0), "templateName")),
                     ystr(yp(ad, ar, "metadata", "name", NULL)));
    yaml_node_t *given = yget(rd, an, "args"), *needed = yp(ad, ar, "spec", "args", NULL);
    bool release = false;
    for (int i = 0; i < ylen(given); i++)
        release |= strcmp(ystr(yget(rd, yat(rd, given, i), "name")), "release") == 0;
    cr_assert(release, "the Rollout passes the release it rolls out");
    for (int i = 0; i < ylen(needed); i++) {
        yaml_node_t *arg = yat(ad, needed, i);
        if (yget(ad, arg, "value") || yget(ad, arg, "valueFrom")) continue;
        const char *n = ystr(yget(ad, arg, "name"));
        bool found = false;
        for (int k = 0; k < ylen(given); k++)
            found |= strcmp(ystr(yget(rd, yat(rd, given, k), "name")), n) == 0;
        cr_assert(found, "the template needs args.%s, the Rollout does not pass it", n);
    }
    yaml_node_t *m = yat(ad, yp(ad, ar, "spec", "metrics", NULL), 0);
    const char *il = ystr(yget(ad, m, "inconclusiveLimit"));
    const char *el = ystr(yget(ad, m, "consecutiveErrorLimit"));
    cr_assert(il && atoi(il) > 0, "inconclusiveLimit 0 pauses at the first ANALYZING");
    cr_assert(el && atoi(el) > 1, "consecutiveErrorLimit");
    ctr_t ctr[8];
    int nc = 0;
    collect(rd, rr, ctr, &nc);
    cr_assert_eq(nc, 0, "canaryd in the Rollout would run in every stable pod too");
    yfree(&r);
    yfree(&a);
}

/* The native-sidecar variant: canaryd in initContainers with restartPolicy
 * Always (Kubernetes >= 1.29), otherwise the same container as the plain
 * sidecar's. */
Test(yaml, native_sidecar_variant)
{
    yfile_t p, n;
    yload(SRC "docker/k8s/deployment.yaml", &p);
    yload(SRC "docker/k8s/deployment-native-sidecar.yaml", &n);
    yaml_document_t *pd = &p.doc[0], *nd = &n.doc[0];
    yaml_node_t *ps = yp(pd, yaml_document_get_root_node(pd), "spec", "template", "spec", NULL);
    yaml_node_t *ns_ = yp(nd, yaml_document_get_root_node(nd), "spec", "template", "spec", NULL);
    yaml_node_t *init = yget(nd, ns_, "initContainers");
    cr_assert_eq(ylen(init), 1);
    yaml_node_t *side = yat(nd, init, 0);
    cr_assert_str_eq(ystr(yget(nd, side, "name")), "canaryd");
    cr_assert_str_eq(ystr(yget(nd, side, "restartPolicy")), "Always");
    cr_assert_eq(ylen(yget(nd, ns_, "containers")), 1);
    cr_assert_null(yget(pd, ps, "initContainers"));
    /* Same env, in the same order. */
    yaml_node_t *pc = NULL;
    yaml_node_t *pcs = yget(pd, ps, "containers");
    for (int i = 0; i < ylen(pcs); i++)
        if (strcmp(ystr(yget(pd, yat(pd, pcs, i), "name")), "canaryd") == 0) pc = yat(pd, pcs, i);
    cr_assert_not_null(pc);
    yaml_node_t *pe = yget(pd, pc, "env"), *ne = yget(nd, side, "env");
    cr_assert_eq(ylen(pe), ylen(ne));
    for (int i = 0; i < ylen(pe); i++)
        cr_assert_str_eq(ystr(yget(pd, yat(pd, pe, i), "name")),
                         ystr(yget(nd, yat(nd, ne, i), "name")));
    yfree(&p);
    yfree(&n);
}

/* Secrets: every canaryd pod mounts the Secret canaryd-webhook at
 * /run/secrets/canaryd, the Secret has the key the ConfigMap's url_file
 * names, and no canaryd container takes a secret inline. */
Test(yaml, secrets_mounted_from_the_secret)
{
    yfile_t cm, sec;
    yload(SRC "docker/k8s/configmap.yaml", &cm);
    yload(SRC "docker/k8s/secret.yaml", &sec);
    const char *text =
        ystr(yp(&cm.doc[0], yaml_document_get_root_node(&cm.doc[0]), "data", "sop.yaml", NULL));
    const char *f = strstr(text, "url_file: /run/secrets/canaryd/");
    cr_assert_not_null(f, "the ConfigMap's sink reads no secret file");
    char key[64];
    snprintf(key, sizeof(key), "%.*s", (int)strcspn(f + 31, "\n"), f + 31);
    yaml_node_t *sd = yp(&sec.doc[0], yaml_document_get_root_node(&sec.doc[0]), "stringData", NULL);
    cr_assert_not_null(yget(&sec.doc[0], sd, key), "secret.yaml has no key %s", key);
    const char *secname = ystr(
        yp(&sec.doc[0], yaml_document_get_root_node(&sec.doc[0]), "metadata", "name", NULL));
    for (int i = 0; CANARYD_FILES[i]; i++) {
        char path[512];
        yfile_t y;
        snprintf(path, sizeof(path), SRC "%s", CANARYD_FILES[i]);
        yload(path, &y);
        yaml_document_t *d = &y.doc[0];
        yaml_node_t *ps = yp(d, yaml_document_get_root_node(d), "spec", "template", "spec", NULL);
        yaml_node_t *vols = yget(d, ps, "volumes");
        const char *vol = NULL;
        for (int k = 0; k < ylen(vols); k++)
            if (ystr(yp(d, yat(d, vols, k), "secret", "secretName", NULL)) &&
                strcmp(ystr(yp(d, yat(d, vols, k), "secret", "secretName", NULL)), secname) == 0)
                vol = ystr(yget(d, yat(d, vols, k), "name"));
        cr_assert_not_null(vol, "%s: no volume of the Secret %s", CANARYD_FILES[i], secname);
        ctr_t c[8];
        int nc = 0;
        collect(d, yaml_document_get_root_node(d), c, &nc);
        yaml_node_t *mounts = yget(c[0].d, c[0].c, "volumeMounts");
        bool mounted = false;
        for (int k = 0; k < ylen(mounts); k++) {
            yaml_node_t *mnt = yat(d, mounts, k);
            mounted |= strcmp(ystr(yget(d, mnt, "name")), vol) == 0 &&
                       strcmp(ystr(yget(d, mnt, "mountPath")), "/run/secrets/canaryd") == 0 &&
                       ystr(yget(d, mnt, "readOnly")) &&
                       strcmp(ystr(yget(d, mnt, "readOnly")), "true") == 0;
        }
        cr_assert(mounted, "%s: the Secret is not mounted read-only at /run/secrets/canaryd",
                  CANARYD_FILES[i]);
        yaml_node_t *env = yget(c[0].d, c[0].c, "env");
        for (int k = 0; k < ylen(env); k++) {
            const char *name = ystr(yget(d, yat(d, env, k), "name"));
            cr_assert(strcmp(name, "CANARYD_WEBHOOK_URL") != 0 ||
                          yp(d, yat(d, env, k), "valueFrom", "secretKeyRef", NULL),
                      "%s: the webhook URL inline", CANARYD_FILES[i]);
        }
        yfree(&y);
    }
    yfree(&cm);
    yfree(&sec);
}

/* A config file's tree: YAML by its name (.yaml), else JSON. */
static json_t *config_tree(const char *name, const char *text)
{
    size_t n = strlen(name);
    if (n > 5 && strcmp(name + n - 5, ".yaml") == 0) {
        cd_diag_t *dg = malloc(sizeof(*dg));
        json_t *pos = NULL;
        cd_diag_init(dg);
        json_t *t = cd_cfg_yaml_load(text, strlen(text), &pos, dg);
        cr_assert_not_null(t, "%s: %s", name, dg->text);
        json_decref(pos);
        free(dg);
        return t;
    }
    json_error_t e;
    json_t *t = json_loads(text, 0, &e);
    cr_assert_not_null(t, "%s: %s", name, e.text);
    return t;
}

/* Writes the config of the ConfigMap ("sop.yaml", YAML) or compose's
 * (JSON) to path and checks that its rules are the repository's. */
static void config_from_yaml(const char *yfile, const char *repo_config, const char *out)
{
    yfile_t y;
    yload(yfile, &y);
    yaml_document_t *d = &y.doc[0];
    yaml_node_t *root = yaml_document_get_root_node(d);
    bool compose = strstr(yfile, "compose") != NULL;
    const char *text = compose ? ystr(yp(d, root, "configs", "canaryd-config", "content", NULL))
                               : ystr(yp(d, root, "data", "sop.yaml", NULL));
    cr_assert_not_null(text);
    json_t *cm = config_tree(compose ? "compose.json" : "sop.yaml", text);
    char *rtext = slurp_existing(repo_config);
    json_t *repo = config_tree(repo_config, rtext);
    free(rtext);
    static const char *const same[] = {"events", "windows", "verdicts", "rules", NULL};
    for (int i = 0; same[i]; i++)
        cr_assert(json_equal(json_object_get(cm, same[i]), json_object_get(repo, same[i])),
                  "%s: \"%s\" differs from %s", yfile, same[i], repo_config);
    /* docs/operations.md, "Kafka group": a crash-restarted sidecar is blind
     * for up to the session timeout, so the deployment files shorten it. */
    json_t *st = json_object_get(
        json_object_get(json_object_get(cm, "kafka"), "properties"), "session.timeout.ms");
    cr_assert(json_is_integer(st) && json_integer_value(st) == 10000,
              "%s: kafka.properties.session.timeout.ms should be 10000", yfile);
    FILE *f = fopen(out, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
    json_decref(cm);
    json_decref(repo);
    yfree(&y);
}
#endif /* HAVE_YAML */

/* ---- running the image's command ---------------------------------------------- */

#define TOPIC "eventbus.events"
#define PARTS 4
#define NEVENTS 400
#define NCANARY 40

static char root[64];
static pid_t kid;
static rx_t *rx;

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void run_setup(void)
{
    snprintf(root, sizeof(root), "/tmp/cd_deploy_XXXXXX");
    cr_assert_not_null(mkdtemp(root));
    char p[128];
    snprintf(p, sizeof(p), "%s/etc", root);
    mkdir(p, 0755);
    snprintf(p, sizeof(p), "%s/etc/canaryd", root);
    mkdir(p, 0755);
    snprintf(p, sizeof(p), "%s/var", root);
    mkdir(p, 0755);
    snprintf(p, sizeof(p), "%s/var/lib", root);
    mkdir(p, 0755);
    snprintf(p, sizeof(p), "%s/var/lib/canaryd", root);
    mkdir(p, 0755);
    mock_start(TOPIC, PARTS);
    rx = rx_start(0);
    cr_assert_not_null(rx);
}

static void run_teardown(void)
{
    int st;
    if (kid > 0 && waitpid(kid, &st, WNOHANG) == 0) {
        kill(kid, SIGKILL);
        waitpid(kid, &st, 0);
    }
    kid = 0;
    if (rx) rx_stop(rx);
    rx = NULL;
    mock_stop();
    nftw(root, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

TestSuite(image, .init = run_setup, .fini = run_teardown, .timeout = 120);

/* NEVENTS events with no cohort field: only the version tells the cohorts
 * apart, so they count only when CANARYD_CANARY_VERSION reached the agent. */
static void produce_versions(void)
{
    rd_kafka_t *p = producer();
    long long now = (long long)now_ms();
    int seq = 0;
    for (int i = 0; i < NEVENTS; i++) {
        char ev[256];
        snprintf(ev, sizeof(ev),
                 "{\"event_type\":\"REQUEST_COMPLETED\",\"timestamp\":%lld,"
                 "\"service\":\"checkout\",\"version\":\"%s\",\"data\":{\"latency_ms\":12}}",
                 now - NEVENTS + i, i % (NEVENTS / NCANARY) == 0 ? "2.5.0" : "2.4.3");
        produce_raw(p, ev, &seq); /* partition i % PARTS */
    }
    cr_assert_eq(rd_kafka_flush(p, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_destroy(p);
}

#if HAVE_YAML
typedef struct envset {
    char *v[32];
    int n;
} envset_t;

static void env_put(envset_t *e, const char *name, const char *value)
{
    for (int i = 0; i < e->n; i++)
        if (strncmp(e->v[i], name, strlen(name)) == 0 && e->v[i][strlen(name)] == '=') {
            free(e->v[i]);
            e->v[i] = NULL;
            if (asprintf(&e->v[i], "%s=%s", name, value) < 0) cr_assert_fail();
            return;
        }
    cr_assert_lt(e->n, 31);
    if (asprintf(&e->v[e->n++], "%s=%s", name, value) < 0) cr_assert_fail();
    e->v[e->n] = NULL;
}

static void env_free(envset_t *e)
{
    for (int i = 0; i < e->n; i++)
        free(e->v[i]);
    e->n = 0;
}

#define POD "checkout-canary-7d9f-test"
#define SECRET_PATH "/services/T000/B000/s3cr3t-t0ken"

/* The container's environment: the Dockerfile's ENV, then the Deployment's
 * env (which wins), with what a cluster supplies filled in: the pod name,
 * the pod's labels, the Secret's URL (here a local receiver), the brokers
 * (the mock cluster) and the bind address (a free loopback port). */
static void container_env(envset_t *out)
{
    out->n = 0;
    env_put(out, "PATH", "/usr/bin:/bin");
    instr_t in[MAX_INSTR];
    int n = dockerfile(in);
    for (int i = 0; i < n; i++) {
        if (strcmp(in[i].op, "ENV") != 0) continue;
        char *eq = strchr(in[i].args, '=');
        cr_assert_not_null(eq);
        *eq = '\0';
        eq[strcspn(eq + 1, " ") + 1] = '\0';
        env_put(out, in[i].args, eq + 1);
    }
    free_instr(in, n);

    yfile_t y;
    ctr_t c[8];
    int nc = 0;
    yload(SRC "docker/k8s/deployment.yaml", &y);
    yaml_document_t *d = &y.doc[0];
    yaml_node_t *rootn = yaml_document_get_root_node(d);
    collect(d, rootn, c, &nc);
    cr_assert_eq(nc, 1);
    yaml_node_t *labels = yp(d, rootn, "spec", "template", "metadata", "labels", NULL);
    yaml_node_t *env = yget(d, c[0].c, "env");
    for (int i = 0; i < ylen(env); i++) {
        yaml_node_t *e = yat(d, env, i);
        const char *name = ystr(yget(d, e, "name")), *value = ystr(yget(d, e, "value"));
        const char *field = ystr(yp(d, e, "valueFrom", "fieldRef", "fieldPath", NULL));
        char buf[256];
        if (strcmp(name, "CANARYD_BROKERS") == 0) {
            value = bootstraps;
        } else if (strcmp(name, "CANARYD_HTTP_BIND") == 0) {
            value = "127.0.0.1:0";
        } else if (yp(d, e, "valueFrom", "secretKeyRef", NULL)) {
            snprintf(buf, sizeof(buf), "http://127.0.0.1:%u" SECRET_PATH, rx_port(rx));
            value = buf;
        } else if (field && strcmp(field, "metadata.name") == 0) {
            value = POD;
        } else if (field && strncmp(field, "metadata.labels['", 17) == 0) {
            snprintf(buf, sizeof(buf), "%.*s", (int)(strlen(field) - 19), field + 17);
            value = ystr(yget(d, labels, buf));
        }
        cr_assert_not_null(value, "%s: no value", name);
        env_put(out, name, value);
    }
    yfree(&y);
}

/* argv = the Dockerfile's ENTRYPOINT + CMD (+ extra), with canaryd the
 * binary under test and image paths moved under root. */
static pid_t start_image(envset_t *env, const char *const *extra)
{
    instr_t in[MAX_INSTR];
    int n = dockerfile(in);
    json_t *ep = exec_form(find(in, n, "ENTRYPOINT")->args);
    json_t *cmd = exec_form(find(in, n, "CMD")->args);
    free_instr(in, n);
    char *argv[48];
    int ac = 0;
    json_t *parts[2] = {ep, cmd};
    for (int k = 0; k < 2; k++)
        for (size_t i = 0; i < json_array_size(parts[k]); i++) {
            const char *a = json_string_value(json_array_get(parts[k], i));
            char *s;
            /* The init (tini) is the image's, not under test: canaryd runs
             * directly, as tini would exec it. */
            if (ac == 0 && (strcmp(a, "/usr/bin/tini") == 0 || strcmp(a, "--") == 0)) continue;
            if (ac == 0 && strcmp(a, "canaryd") == 0)
                s = strdup(getenv("CANARYD_BIN"));
            else if (strncmp(a, "/etc/canaryd/", 13) == 0 ||
                     strncmp(a, "/var/lib/canaryd", 16) == 0)
                cr_assert_geq(asprintf(&s, "%s%s", root, a), 0);
            else
                s = strdup(a);
            argv[ac++] = s;
        }
    for (int i = 0; extra && extra[i]; i++)
        argv[ac++] = strdup(extra[i]);
    argv[ac] = NULL;
    json_decref(ep);
    json_decref(cmd);

    char out[128], err[128];
    snprintf(out, sizeof(out), "%s/stdout", root);
    snprintf(err, sizeof(err), "%s/stderr", root);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&fa, 2, err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    pid_t pid;
    int rc = posix_spawn(&pid, argv[0], &fa, NULL, argv, env->v);
    posix_spawn_file_actions_destroy(&fa);
    for (int i = 0; i < ac; i++)
        free(argv[i]);
    cr_assert_eq(rc, 0, "spawn: %s", strerror(rc));
    kid = pid;
    return pid;
}

static char *root_file(const char *name)
{
    char p[128];
    snprintf(p, sizeof(p), "%s/%s", root, name);
    return slurp_existing(p);
}

/* The Secret mounted at /run/secrets/canaryd, moved under root: its
 * webhook-url file holds the local receiver's URL (with a token-like path),
 * and the config at cfg names the moved folder. */
static void mount_secret(const char *cfg)
{
    char dir[128], file[160];
    snprintf(dir, sizeof(dir), "%s/run", root);
    mkdir(dir, 0755);
    snprintf(dir, sizeof(dir), "%s/run/secrets", root);
    mkdir(dir, 0755);
    snprintf(dir, sizeof(dir), "%s/run/secrets/canaryd", root);
    mkdir(dir, 0755);
    snprintf(file, sizeof(file), "%s/webhook-url", dir);
    FILE *f = fopen(file, "w");
    cr_assert_not_null(f);
    fprintf(f, "http://127.0.0.1:%u" SECRET_PATH "\n", rx_port(rx)); /* a newline, as echo leaves */
    fclose(f);
    char *text = slurp_existing(cfg);
    const char *at = strstr(text, "/run/secrets/canaryd/");
    cr_assert_not_null(at, "the ConfigMap reads no file from /run/secrets/canaryd");
    f = fopen(cfg, "w");
    cr_assert_not_null(f);
    fprintf(f, "%.*s%s%s", (int)(at - text), text, root, at);
    fclose(f);
    cr_assert_null(strstr(at + 1, "/run/secrets/canaryd/"), "one secret file expected");
    free(text);
}

static int wait_kid_exit(long limit_ms)
{
    int st;
    for (int64_t end = mono_ms() + limit_ms; mono_ms() < end;) {
        if (waitpid(kid, &st, WNOHANG) == kid) {
            kid = 0;
            cr_assert(WIFEXITED(st), "status 0x%x", st);
            return WEXITSTATUS(st);
        }
        sleep_ms(10);
    }
    char *e = root_file("stderr");
    cr_assert_fail("canaryd did not exit within %ld ms; stderr:\n%s", limit_ms, e);
    return -1;
}

static json_t *stats_line(void)
{
    char *e = root_file("stderr");
    const char *s = strstr(e, "canaryd run: stats ");
    cr_assert_not_null(s, "no stats line; stderr:\n%s", e);
    json_t *j = json_loads(s + 19, JSON_DISABLE_EOF_CHECK, NULL);
    cr_assert_not_null(j);
    free(e);
    return j;
}

static long long jint(json_t *j, const char *k)
{
    return (long long)json_integer_value(json_object_get(j, k));
}

/* The Dockerfile's HEALTHCHECK command, run as Docker would, against port. */
static int healthcheck(int port)
{
    instr_t in[MAX_INSTR];
    int n = dockerfile(in);
    json_t *cmd = exec_form(strstr(find(in, n, "HEALTHCHECK")->args, "CMD [") + 4);
    free_instr(in, n);
    char *argv[16], bind[64];
    size_t ac = 0;
    for (; ac < json_array_size(cmd) && ac < 15; ac++)
        argv[ac] = (char *)json_string_value(json_array_get(cmd, ac));
    argv[ac] = NULL;
    snprintf(bind, sizeof(bind), "CANARYD_HTTP_BIND=127.0.0.1:%d", port);
    char *envp[] = {"PATH=/usr/bin:/bin", bind, NULL};
    pid_t pid;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0); /* "connection refused" */
    cr_assert_eq(posix_spawnp(&pid, argv[0], &fa, NULL, argv, envp), 0);
    posix_spawn_file_actions_destroy(&fa);
    int st;
    waitpid(pid, &st, 0);
    json_decref(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

Test(image, entrypoint_with_the_configmap_and_the_deployments_environment)
{
    char cfg[128];
    snprintf(cfg, sizeof(cfg), "%s/etc/canaryd/sop.yaml", root);
    config_from_yaml(SRC "docker/k8s/configmap.yaml", SRC "config/sop.yaml", cfg);
    mount_secret(cfg);
    envset_t env;
    container_env(&env);
    start_image(&env, NULL);
    produce_versions();

    /* Consuming: the pod's own group commits every event. Up to 45 s: if
     * the second consumer thread joins after the mock cluster's first
     * assignment (a loaded machine), librdkafka 2.0's mock holds the
     * rebalance for session.timeout.ms - 1 s (9 s with the ConfigMap's 10 s)
     * and refuses commits meanwhile; a real broker completes it once the
     * members have rejoined. */
    long long sum = -1;
    for (int64_t end = mono_ms() + 45000; mono_ms() < end && sum != NEVENTS;) {
        sum = mock_committed(POD);
        if (sum != NEVENTS) sleep_ms(100);
    }
    if (sum != NEVENTS) {
        char *e = root_file("stderr");
        cr_assert_fail("committed %lld of %d; agent's stderr:\n%s", sum, NEVENTS, e);
    }

    /* The HTTP API is on (CANARYD_HTTP_BIND), and the image's healthcheck passes. */
    char *e = root_file("stderr");
    const char *l = strstr(e, "http: listening on 127.0.0.1:");
    cr_assert_not_null(l, "no HTTP listening line; stderr:\n%s", e);
    int port = atoi(l + strlen("http: listening on 127.0.0.1:"));
    free(e);
    cr_assert_gt(port, 0);
    cr_assert_eq(healthcheck(port), 0, "HEALTHCHECK failed against port %d", port);
    cr_assert_neq(healthcheck(1), 0, "HEALTHCHECK passes with nothing listening");

    /* Memory high-water mark of the running agent (for docs/operations.md). */
    char st[64];
    snprintf(st, sizeof(st), "/proc/%d/status", (int)kid);
    char *status = slurp_existing(st);
    const char *hwm = strstr(status, "VmHWM:");
    cr_log_info("canaryd run: %.*s", hwm ? (int)strcspn(hwm, "\n") : 0, hwm ? hwm : "");
    free(status);

    kill(kid, SIGTERM);
    cr_assert_eq(wait_kid_exit(10000), 0);
    json_t *s = stats_line();
    cr_assert_eq(jint(s, "messages"), NEVENTS);
    cr_assert_eq(jint(s, "accepted"), NEVENTS, "cohorts need CANARYD_CANARY_VERSION");
    cr_assert_eq(jint(s, "bad"), 0);
    json_t *rc = json_object_get(json_object_get(s, "by_type"), "REQUEST_COMPLETED");
    cr_assert_eq(jint(rc, "canary"), NCANARY);
    cr_assert_eq(jint(rc, "stable"), NEVENTS - NCANARY);
    json_decref(s);

    /* The verdict log is on the volume; the webhook's secret is nowhere. */
    char vl[128];
    struct stat sb;
    snprintf(vl, sizeof(vl), "%s/var/lib/canaryd/verdicts.log", root);
    cr_assert_eq(stat(vl, &sb), 0, "no verdict log at %s", vl);
    char *out = root_file("stdout"), *err = root_file("stderr");
    cr_assert_null(strstr(err, "s3cr3t"), "secret in stderr");
    cr_assert_null(strstr(out, "s3cr3t"), "secret in stdout");
    free(out);
    free(err);
    /* The chat sink read its URL from the mounted Secret: the receiver got
     * the verdicts (Slack format) on the secret path, newline dropped. */
    cr_assert(rx_wait(rx, 1, 10000), "no webhook request");
    rx_request_t q = rx_get(rx, 0);
    cr_assert_str_eq(q.path, SECRET_PATH);
    cr_assert_not_null(strstr(q.body, "\"text\":"), "%s", q.body);
    rx_request_free(&q);
    env_free(&env);
}

Test(image, command_line_beats_the_environment)
{
    char cfg[128];
    snprintf(cfg, sizeof(cfg), "%s/etc/canaryd/sop.yaml", root);
    config_from_yaml(SRC "docker/k8s/configmap.yaml", SRC "config/sop.yaml", cfg);
    mount_secret(cfg);
    envset_t env;
    container_env(&env);
    env_put(&env, "CANARYD_BROKERS", "127.0.0.1:1"); /* nothing listens there */
    env_put(&env, "CANARYD_TOPIC", "no-such-topic");
    produce_versions();
    char n[16];
    snprintf(n, sizeof(n), "%d", NEVENTS);
    const char *extra[] = {"--brokers",           bootstraps, "--topic", TOPIC,
                           "--exit-after-events", n,          NULL};
    start_image(&env, extra);
    cr_assert_eq(wait_kid_exit(30000), 0);
    json_t *s = stats_line();
    cr_assert_eq(jint(s, "messages"), NEVENTS);
    cr_assert_eq(jint(s, "accepted"), NEVENTS);
    json_decref(s);
    env_free(&env);
}

Test(image, compose_config_passes_check_config)
{
    char cfg[128];
    snprintf(cfg, sizeof(cfg), "%s/etc/canaryd/compose.json", root);
    config_from_yaml(SRC "docker/compose.yml", SRC "config/demo.json", cfg);
    yfile_t y;
    yload(SRC "docker/compose.yml", &y);
    yaml_document_t *d = &y.doc[0];
    yaml_node_t *e =
        yp(d, yaml_document_get_root_node(d), "services", "canaryd", "environment", NULL);
    envset_t env = {0};
    env_put(&env, "PATH", "/usr/bin:/bin");
    for (yaml_node_pair_t *q = e->data.mapping.pairs.start; q < e->data.mapping.pairs.top; q++)
        env_put(&env, ystr(yaml_document_get_node(d, q->key)),
                ystr(yaml_document_get_node(d, q->value)));
    yfree(&y);
    char *argv[] = {getenv("CANARYD_BIN"), "check-config", "--quiet", cfg, NULL};
    pid_t pid;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    char err[128];
    snprintf(err, sizeof(err), "%s/stderr", root);
    posix_spawn_file_actions_addopen(&fa, 2, err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    cr_assert_eq(posix_spawn(&pid, argv[0], &fa, NULL, argv, env.v), 0);
    posix_spawn_file_actions_destroy(&fa);
    int st;
    waitpid(pid, &st, 0);
    char *text = root_file("stderr");
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "check-config failed:\n%s", text);
    cr_assert_not_null(strstr(text, "CANARYD_WEBHOOK_URL adds sinks.outputs[1]"), "%s", text);
    free(text);
    env_free(&env);
}
#else
Test(yaml, libyaml_missing)
{
    cr_skip_test("libyaml-dev is not installed (tools/setup installs it): YAML checks skipped");
}
#endif
