/* fakeimpl.c - implementations that are broken on purpose, one per
 * FAKE_<VARIANT> definition, each built as its own shared object: the
 * runner must refuse the unusable ones with one line and exit status 2, and
 * report the crashing and hanging ones test by test.
 *
 *   FAKE_NOSYM      exports lspec_impl_v2 but not lspec_impl_v1
 *   FAKE_NULLTABLE  lspec_impl_v1() returns NULL
 *   FAKE_ABI        abi_version 2
 *   FAKE_SMALL      a table of 24 bytes
 *   FAKE_NULLENTRY  loop_cancel is NULL
 *   FAKE_CAPS       a capability bit v1 does not define
 *   FAKE_WATCHERS   custom_child_watchers 0
 *   FAKE_ONLY312    valid, declares profile 3.12 only
 *   FAKE_CRASHING   valid, every entry dies of SIGSEGV
 *   FAKE_HANGING    valid, every entry blocks forever
 *
 * Every entry points at one function of type void(void).  The checker never
 * calls an entry; the conformance tests do, and then that function never
 * returns (it crashes or blocks), so the mismatch between its type and the
 * entry's never produces a value anyone reads.
 */
#include <loopspec/abi.h>

#include <signal.h>
#include <string.h>
#include <unistd.h>

const struct lspec_impl *lspec_impl_v1(void);
const struct lspec_impl *lspec_impl_v2(void);

static void entry(void) {
#if defined(FAKE_HANGING)
  for (;;)
    pause();
#else
  raise(SIGSEGV);
#endif
}

static struct lspec_impl table;

/* Fills the table: valid, then broken as the variant says. */
static const struct lspec_impl *make_table(void) {
  void (*fn)(void) = entry;
  size_t off;

  table.abi_version = LSPEC_ABI_VERSION;
  table.size = LSPEC_IMPL_V1_SIZE;
  table.name = "fake";
  table.version = "0";
#if defined(FAKE_CRASHING)
  /* Quotes, a backslash, control characters, UTF-8 and a byte that is not
   * UTF-8: the JSON report must still parse. */
  table.name = "fake \"crashing\" \\ \t \x01 \xc3\xa9 \xff";
#endif
  table.capabilities = LSPEC_CAP_KNOWN_ALL;
  table.custom_child_watchers = LSPEC_CUSTOM_WATCHERS_SUPPORTED;
  table.profiles = LSPEC_PROFILES_ALL;
  /* asyncio's five kinds, so that every test of the suite runs (and meets
   * the crashing or hanging entries) rather than failing for a kind. */
  table.watcher_kinds = LSPEC_WATCHER_KIND_BIT(LSPEC_WATCHER_THREADED) |
                        LSPEC_WATCHER_KIND_BIT(LSPEC_WATCHER_MULTILOOP) |
                        LSPEC_WATCHER_KIND_BIT(LSPEC_WATCHER_SAFE) |
                        LSPEC_WATCHER_KIND_BIT(LSPEC_WATCHER_FAST) |
                        LSPEC_WATCHER_KIND_BIT(LSPEC_WATCHER_PIDFD);
  for (off = offsetof(struct lspec_impl, set_profile);
       off + sizeof fn <= LSPEC_IMPL_V1_SIZE; off += sizeof fn)
    memcpy((char *)&table + off, &fn, sizeof fn);

#if defined(FAKE_ABI)
  table.abi_version = 2;
#elif defined(FAKE_SMALL)
  table.size = 24;
#elif defined(FAKE_NULLENTRY)
  table.loop_cancel = NULL;
#elif defined(FAKE_CAPS)
  table.capabilities |= UINT64_C(1) << 40;
#elif defined(FAKE_WATCHERS)
  table.custom_child_watchers = 0;
#elif defined(FAKE_ONLY312)
  table.profiles = LSPEC_PROFILE_BIT(LSPEC_PROFILE_3_12);
#endif
  return &table;
}

#if defined(FAKE_NOSYM)
const struct lspec_impl *lspec_impl_v2(void) { return make_table(); }
#elif defined(FAKE_NULLTABLE)
const struct lspec_impl *lspec_impl_v1(void) {
  (void)make_table(); /* A valid table exists, and is not given out. */
  return NULL;
}
#else
const struct lspec_impl *lspec_impl_v1(void) { return make_table(); }
#endif
