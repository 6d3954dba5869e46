/* sysinfo.c - clocks, load, the process's memory, threads and descriptors
 * (/proc/self), and the machine's description for the reports. */
#define _GNU_SOURCE 1
#include "bench.h"

#include <dirent.h>
#include <gnu/libc-version.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

static int64_t clock_ns(clockid_t id) {
  struct timespec t;
  clock_gettime(id, &t);
  return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

int64_t lb_now_ns(void) { return clock_ns(CLOCK_MONOTONIC); }
int64_t lb_process_cpu_ns(void) { return clock_ns(CLOCK_PROCESS_CPUTIME_ID); }
int64_t lb_thread_cpu_ns(void) { return clock_ns(CLOCK_THREAD_CPUTIME_ID); }

void lb_loadavg(double load[3]) {
  FILE *f = fopen("/proc/loadavg", "re");
  load[0] = load[1] = load[2] = lb_nan();
  if (f == NULL)
    return;
  if (fscanf(f, "%lf %lf %lf", &load[0], &load[1], &load[2]) != 3)
    load[0] = load[1] = load[2] = lb_nan();
  fclose(f);
}

int lb_procmem_read(struct lb_procmem *m) {
  char line[256];
  FILE *f;
  DIR *d;
  struct dirent *e;
  long kib;

  memset(m, 0, sizeof *m);
  if ((f = fopen("/proc/self/status", "re")) == NULL)
    return -1;
  while (fgets(line, sizeof line, f) != NULL) {
    if (sscanf(line, "VmRSS: %ld", &kib) == 1)
      m->rss_kib = (double)kib;
    else if (sscanf(line, "VmSize: %ld", &kib) == 1)
      m->vsz_kib = (double)kib;
    else if (sscanf(line, "Threads: %ld", &kib) == 1)
      m->threads = kib;
  }
  fclose(f);
  if ((d = opendir("/proc/self/fd")) == NULL)
    return -1;
  while ((e = readdir(d)) != NULL)
    if (e->d_name[0] != '.')
      m->fds++;
  closedir(d);
  m->fds--; /* the directory's own descriptor */
  return 0;
}

void lb_utc_now(char *buf, size_t len) {
  time_t t = time(NULL);
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* The first "model name" of /proc/cpuinfo, or "unknown". */
static void cpu_model(char *buf, size_t len) {
  char line[256], *p;
  FILE *f = fopen("/proc/cpuinfo", "re");
  snprintf(buf, len, "unknown");
  if (f == NULL)
    return;
  while (fgets(line, sizeof line, f) != NULL)
    if (strncmp(line, "model name", 10) == 0 && (p = strchr(line, ':'))) {
      p += 1 + strspn(p + 1, " \t");
      p[strcspn(p, "\n")] = '\0';
      snprintf(buf, len, "%s", p);
      break;
    }
  fclose(f);
}

static long mem_total_kib(void) {
  char line[256];
  long kib = -1;
  FILE *f = fopen("/proc/meminfo", "re");
  if (f == NULL)
    return -1;
  while (fgets(line, sizeof line, f) != NULL)
    if (sscanf(line, "MemTotal: %ld", &kib) == 1)
      break;
  fclose(f);
  return kib;
}

/* A string as a JSON string body: quotes and backslashes escaped,
 * control characters dropped. */
void lb_json_str(FILE *f, const char *s) {
  fputc('"', f);
  for (; *s; s++) {
    if (*s == '"' || *s == '\\')
      fputc('\\', f);
    if ((unsigned char)*s >= 0x20)
      fputc(*s, f);
  }
  fputc('"', f);
}

void lb_machine_json(FILE *f, const char *in) {
  struct utsname u;
  char model[128];

  uname(&u);
  cpu_model(model, sizeof model);
  fprintf(f, "%s\"kernel\": ", in);
  lb_json_str(f, u.release);
  fprintf(f, ",\n%s\"kernel_version\": ", in);
  lb_json_str(f, u.version);
  fprintf(f, ",\n%s\"arch\": ", in);
  lb_json_str(f, u.machine);
  fprintf(f, ",\n%s\"cpu\": ", in);
  lb_json_str(f, model);
  fprintf(f, ",\n%s\"cpus_online\": %ld,\n", in, sysconf(_SC_NPROCESSORS_ONLN));
  fprintf(f, "%s\"mem_total_kib\": %ld,\n", in, mem_total_kib());
  fprintf(f, "%s\"glibc\": ", in);
  lb_json_str(f, gnu_get_libc_version());
  fputc('\n', f);
}

void lb_machine_text(FILE *f) {
  struct utsname u;
  char model[128];

  uname(&u);
  cpu_model(model, sizeof model);
  fprintf(f, "machine: %s, %ld CPUs online, %ld MiB, kernel %s (%s), glibc %s\n",
          model, sysconf(_SC_NPROCESSORS_ONLN), mem_total_kib() / 1024,
          u.release, u.machine, gnu_get_libc_version());
}
