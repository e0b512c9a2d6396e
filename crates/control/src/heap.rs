//! Returning freed memory to the OS after a big rebuild. glibc's allocator keeps
//! freed memory in its arenas; after a start or reload over tens of thousands of
//! services (the parsed file, the old table and config) that is hundreds of MB of
//! resident memory nothing uses. `malloc_trim` gives the free pages back.

/// Gives freed heap pages back to the OS (glibc only; elsewhere nothing to do).
pub(crate) fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[allow(unsafe_code)]
    // SAFETY: malloc_trim only walks the allocator's own free lists; it takes no
    // pointers from us and is safe to call at any time from any thread.
    unsafe {
        libc::malloc_trim(0);
    }
}
