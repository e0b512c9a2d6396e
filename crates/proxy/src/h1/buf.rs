//! Per-worker pools of I/O buffers for the HTTP/1 path. A connection takes one
//! when bytes are ready and gives it back as soon as it has nothing unread in it,
//! so an idle keep-alive connection holds no buffer (nginx frees its buffers the
//! same way); the buffer goes back to the thread's free list, not the allocator.

use std::cell::RefCell;

/// Bytes a buffer holds: a request head up to this size, or one read of a body.
pub(crate) const SIZE: usize = 16 * 1024;
/// Free buffers kept per thread (4 MiB); more are freed.
const KEEP: usize = 256;

thread_local! {
    static FREE: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// A pooled buffer: `data` holds what was read, `pos` how much of it is used up.
pub(crate) struct Buf {
    pub(crate) data: Vec<u8>,
    pub(crate) pos: usize,
}

impl Buf {
    /// An empty buffer of at least `SIZE` bytes from this thread's pool.
    pub(crate) fn take() -> Buf {
        let data = FREE.with(|f| f.borrow_mut().pop()).unwrap_or_else(|| Vec::with_capacity(SIZE));
        Buf { data, pos: 0 }
    }

    /// The bytes read and not used yet.
    pub(crate) fn unread(&self) -> &[u8] {
        &self.data[self.pos..]
    }

    /// Marks `n` more bytes as used.
    pub(crate) fn consume(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.data.len());
        if self.pos == self.data.len() {
            self.clear();
        }
    }

    /// Forgets everything in it.
    pub(crate) fn clear(&mut self) {
        self.data.clear();
        self.pos = 0;
    }

    /// Moves the unread bytes to the front, so the buffer has room to read into.
    pub(crate) fn compact(&mut self) {
        if self.pos > 0 {
            self.data.drain(..self.pos);
            self.pos = 0;
        }
    }
}

impl Drop for Buf {
    fn drop(&mut self) {
        let mut data = std::mem::take(&mut self.data);
        // A buffer grown for a large head goes back to the allocator.
        if data.capacity() != SIZE {
            return;
        }
        data.clear();
        FREE.with(|f| {
            let mut free = f.borrow_mut();
            if free.len() < KEEP {
                free.push(data);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_come_back_to_the_thread() {
        let mut a = Buf::take();
        a.data.extend_from_slice(b"GET / HTTP/1.1\r\n\r\nrest");
        let at = a.data.as_ptr();
        a.consume(18);
        assert_eq!(a.unread(), b"rest");
        a.compact();
        assert_eq!((a.unread(), a.pos), (&b"rest"[..], 0));
        a.consume(4);
        assert!(a.unread().is_empty() && a.data.is_empty());
        drop(a);
        let b = Buf::take();
        assert_eq!(b.data.as_ptr(), at, "the same allocation, reused");
        assert!(b.data.is_empty() && b.data.capacity() == SIZE);
    }
}
