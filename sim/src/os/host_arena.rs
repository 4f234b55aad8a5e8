//! The host-backed arena: real bytes for real third-party code.
//!
//! This is the only file of the virtual OS that calls the host OS; outside it, `runner/isolated.rs`
//! forks the child that host-backed runs use, and the CLI's `main_with` restores SIGPIPE's default
//! action (see `sim/README.md`). It maps one real
//! reservation (`PROT_NONE`, `MAP_NORESERVE`) and places simulated addresses at a fixed offset
//! inside it, so a crate like `dlmalloc` can dereference the memory it was given. Committed pages
//! get the protection the simulation gives them (`Os::commit` and `Os::protect` set it span by
//! span); decommitted and released pages are replaced by a fresh `PROT_NONE` mapping, which drops
//! their contents and makes them inaccessible, so that a use-after-release by real code crashes
//! at once instead of passing silently. Turning that crash into a `fault` finding is the job of
//! whoever runs host-backed subjects (in a child process, see `runner::isolated`). The crate's own
//! calls back into its platform layer reach the OS through `Os::lend` and `with_lent` (`lend.rs`),
//! which also name the code that runs for that report.

use super::pages::{PAGE_SIZE, Prot};

/// Where the arena's window starts in the simulated address space (32 TiB).
pub const ARENA_SIM_BASE: u64 = 0x2000_0000_0000;

pub struct HostArena {
    base: *mut u8,
    len: u64,
}

impl std::fmt::Debug for HostArena {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "HostArena {{ base: {:p}, len: {:#x} }}",
            self.base, self.len
        )
    }
}

impl HostArena {
    /// Maps a real reservation of `len` bytes (rounded up to whole pages), inaccessible until the
    /// simulation commits pages in it. `Os::enable_host_arena` makes the one a run uses; a
    /// subject's `check_host` makes one and drops it, to learn before a run whether this host
    /// grants the size (a `ulimit -v` below it does not): the error says why not.
    pub fn new(len: u64) -> Result<HostArena, String> {
        let len = len.div_ceil(PAGE_SIZE) * PAGE_SIZE;
        // SAFETY: an anonymous private mapping at an address of the kernel's choosing aliases
        // nothing; PROT_NONE means nothing can touch it until a commit.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len as usize,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(format!(
                "host arena: mmap of {len} bytes failed: {}",
                std::io::Error::last_os_error()
            ));
        }
        Ok(HostArena {
            base: base.cast(),
            len,
        })
    }

    pub fn sim_base(&self) -> u64 {
        ARENA_SIM_BASE
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The real address of the host range's first byte.
    pub fn host_base(&self) -> *mut u8 {
        self.base
    }

    /// The real address of simulated address `addr`, or `None` outside the arena's window.
    pub fn host_ptr(&self, addr: u64) -> Option<*mut u8> {
        let offset = addr.checked_sub(ARENA_SIM_BASE)?;
        // SAFETY: the offset is inside the mapping, so the pointer stays in bounds.
        (offset < self.len).then(|| unsafe { self.base.add(offset as usize) })
    }

    /// The simulated address of real pointer `ptr`, or `None` when it is not into the arena.
    pub fn sim_addr(&self, ptr: *const u8) -> Option<u64> {
        let offset = (ptr as usize).checked_sub(self.base as usize)? as u64;
        (offset < self.len).then_some(ARENA_SIM_BASE + offset)
    }

    fn range(&self, addr: u64, len: u64) -> (*mut libc::c_void, usize) {
        let ptr = self
            .host_ptr(addr)
            .expect("the simulation keeps arena reservations inside the window");
        assert!(
            addr - ARENA_SIM_BASE + len <= self.len,
            "range inside the arena"
        );
        (ptr.cast(), len as usize)
    }

    /// Drops the range's contents and makes it inaccessible. A fresh `PROT_NONE` mapping over
    /// the range does both in one call, where `MADV_DONTNEED` then `mprotect` took two: decommit
    /// and release are most of the host calls of a host-backed run.
    pub fn decommit(&mut self, addr: u64, len: u64) {
        let (ptr, len) = self.range(addr, len);
        // SAFETY: the range lies inside our own mapping, which MAP_FIXED replaces in place with
        // the same kind of mapping it was made as (see `new`); dropping its contents is the point.
        let mapped = unsafe {
            libc::mmap(
                ptr,
                len,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_FIXED,
                -1,
                0,
            )
        };
        assert_eq!(
            mapped,
            ptr,
            "mmap(PROT_NONE, MAP_FIXED) on the host arena: {}",
            std::io::Error::last_os_error()
        );
    }

    pub fn protect(&mut self, addr: u64, len: u64, prot: Prot) {
        let (ptr, len) = self.range(addr, len);
        let flags = match (prot.read, prot.write) {
            (_, true) => libc::PROT_READ | libc::PROT_WRITE,
            (true, false) => libc::PROT_READ,
            (false, false) => libc::PROT_NONE,
        };
        // SAFETY: the range lies inside our own mapping.
        let rc = unsafe { libc::mprotect(ptr, len, flags) };
        assert_eq!(
            rc,
            0,
            "mprotect on the host arena: {}",
            std::io::Error::last_os_error()
        );
    }

    /// Copies out of committed memory (the caller has checked the pages).
    pub fn read(&self, addr: u64, buf: &mut [u8]) {
        let (ptr, _) = self.range(addr, buf.len() as u64);
        // SAFETY: the pages were checked committed and readable by the caller.
        unsafe { std::ptr::copy_nonoverlapping(ptr.cast::<u8>(), buf.as_mut_ptr(), buf.len()) };
    }

    pub fn write(&mut self, addr: u64, bytes: &[u8]) {
        let (ptr, _) = self.range(addr, bytes.len() as u64);
        // SAFETY: the pages were checked committed and writable by the caller.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), ptr.cast::<u8>(), bytes.len()) };
    }
}

impl Drop for HostArena {
    fn drop(&mut self) {
        // SAFETY: we own the mapping and nothing refers to it once the arena is gone.
        unsafe { libc::munmap(self.base.cast(), self.len as usize) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::os::Os;

    /// Whether real code could read the byte at `ptr`, asked of the kernel without risking a
    /// crash: a write from an unreadable buffer fails with EFAULT.
    fn host_readable(ptr: *const u8) -> bool {
        let mut fds = [0; 2];
        // SAFETY: `fds` has room for two descriptors; both are closed below.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        // SAFETY: the kernel checks the buffer and fails with EFAULT instead of faulting.
        let written = unsafe { libc::write(fds[1], ptr.cast(), 1) };
        // SAFETY: the two descriptors made above.
        unsafe {
            libc::close(fds[0]);
            libc::close(fds[1]);
        }
        written == 1
    }

    /// Whether real code could write the byte at `ptr`, asked the same way: a read into an
    /// unwritable buffer fails with EFAULT. (When it can, the byte becomes 0x5a.)
    fn host_writable(ptr: *mut u8) -> bool {
        let mut fds = [0; 2];
        // SAFETY: as in `host_readable`; the pipe holds the one byte read back.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        let byte = 0x5au8;
        // SAFETY: `byte` is a live one-byte buffer; the kernel checks `ptr` and fails with EFAULT.
        let read = unsafe {
            assert_eq!(libc::write(fds[1], (&raw const byte).cast(), 1), 1);
            libc::read(fds[0], ptr.cast(), 1)
        };
        // SAFETY: the two descriptors made above.
        unsafe {
            libc::close(fds[0]);
            libc::close(fds[1]);
        }
        read == 1
    }

    #[test]
    fn committing_a_read_only_page_again_leaves_it_read_only_on_the_host() {
        let mut os = Os::for_tests(1);
        os.enable_host_arena(1 << 30).unwrap();
        let base = os.reserve(2 * 4096, 0, "t").unwrap();
        os.commit(base, 4096, "t").unwrap();
        os.protect(base, 4096, Prot::READ, "t").unwrap();
        // The second commit covers the read-only page (unchanged in the simulation) and a new one.
        os.commit(base, 2 * 4096, "t").unwrap();
        let (first, second) = (
            os.host_ptr(base).unwrap(),
            os.host_ptr(base + 4096).unwrap(),
        );
        assert!(host_readable(first));
        assert!(
            !host_writable(first),
            "the simulation still holds the first page read-only, so the host must too"
        );
        assert!(
            host_writable(second),
            "the newly committed page is writable"
        );
        os.release(base, 2 * 4096, "t").unwrap();
    }

    #[test]
    fn decommitted_pages_stay_inaccessible_on_the_host_through_a_protect_over_them() {
        let mut os = Os::for_tests(1);
        os.enable_host_arena(1 << 30).unwrap();
        let base = os.reserve(3 * 4096, 0, "t").unwrap();
        os.commit(base, 3 * 4096, "t").unwrap();
        os.decommit(base + 4096, 4096, "t").unwrap();
        let page = |n: u64| os.host_ptr(base + n * 4096).unwrap() as *const u8;
        let (first, second, third) = (page(0), page(1), page(2));
        assert!(
            !host_readable(second),
            "decommit made the page inaccessible"
        );
        os.protect(base, 3 * 4096, Prot::READ, "t").unwrap();
        assert!(host_readable(first));
        assert!(host_readable(third));
        assert!(
            !host_readable(second),
            "a protect over a decommitted page must not make it readable for real code"
        );
        os.release(base, 3 * 4096, "t").unwrap();
        assert!(
            !host_readable(first),
            "release makes every page inaccessible"
        );
    }

    #[test]
    fn committed_arena_memory_is_real_and_shared_with_checked_access() {
        let mut os = Os::for_tests(1);
        os.enable_host_arena(1 << 30).unwrap();
        let base = os.reserve(64 * 1024, 0, "t").unwrap();
        assert!(base >= ARENA_SIM_BASE);
        os.commit(base, 4096, "t").unwrap();
        let ptr = os.host_ptr(base).unwrap();
        // SAFETY: the page was just committed read-write.
        unsafe { ptr.cast::<u64>().write(0xfeed) };
        assert_eq!(
            os.read_u64(base, "t").unwrap(),
            0xfeed,
            "checked reads see what real code wrote"
        );
        assert_eq!(os.sim_addr(ptr), Some(base));
        os.decommit(base, 4096, "t").unwrap();
        os.commit(base, 4096, "t").unwrap();
        assert_eq!(
            os.read_u64(base, "t").unwrap(),
            0,
            "decommit drops the real contents too"
        );
        os.release(base, 64 * 1024, "t").unwrap();
    }
}
