//! A two-level array of `Arc`s that shares structure between versions: replacing
//! one element copies one chunk of pointers and the chunk list, not all of them.
//! With 256 per chunk, a switch of one service among 50,000 clones ~450 `Arc`s
//! instead of 50,000, and a lookup costs one more dependent load than a flat array.

use std::sync::Arc;

/// Elements per chunk (a power of two: an index splits with a shift and a mask).
const SHIFT: usize = 8;
const CHUNK: usize = 1 << SHIFT;

/// An immutable sequence of `Arc<T>`.
pub(crate) struct Slots<T> {
    chunks: Box<[Arc<[Arc<T>]>]>,
    len: usize,
}

impl<T> Slots<T> {
    /// The elements of `items`, in order.
    pub(crate) fn new(items: Vec<Arc<T>>) -> Slots<T> {
        let len = items.len();
        let chunks = items.chunks(CHUNK).map(Arc::from).collect();
        Slots { chunks, len }
    }

    /// Element `i`, if there is one.
    #[inline]
    pub(crate) fn get(&self, i: usize) -> Option<&Arc<T>> {
        self.chunks.get(i >> SHIFT).and_then(|c| c.get(i & (CHUNK - 1)))
    }

    /// A copy with element `i` replaced (sharing every other chunk); `None` when out of range.
    pub(crate) fn with(&self, i: usize, value: Arc<T>) -> Option<Slots<T>> {
        let old = self.chunks.get(i >> SHIFT)?;
        let at = i & (CHUNK - 1);
        if at >= old.len() {
            return None;
        }
        let mut chunk: Vec<Arc<T>> = old.to_vec();
        chunk[at] = value;
        let mut chunks = self.chunks.to_vec();
        chunks[i >> SHIFT] = Arc::from(chunk);
        Some(Slots { chunks: chunks.into(), len: self.len })
    }

    /// Every element, in order.
    /// The same items (a copy of the chunk list; the chunks are shared).
    pub(crate) fn share(&self) -> Slots<T> {
        Slots { chunks: self.chunks.clone(), len: self.len }
    }

    pub(crate) fn iter(&self) -> impl ExactSizeIterator<Item = &Arc<T>> + Clone {
        Iter { chunks: &self.chunks, next: 0, len: self.len }
    }
}

struct Iter<'a, T> {
    chunks: &'a [Arc<[Arc<T>]>],
    next: usize,
    len: usize,
}

impl<'a, T> Iterator for Iter<'a, T> {
    type Item = &'a Arc<T>;

    fn next(&mut self) -> Option<&'a Arc<T>> {
        if self.next >= self.len {
            return None;
        }
        let item = self.chunks.get(self.next >> SHIFT).and_then(|c| c.get(self.next & (CHUNK - 1)));
        self.next += 1;
        item
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.len - self.next;
        (left, Some(left))
    }
}

impl<T> ExactSizeIterator for Iter<'_, T> {}

impl<T> Clone for Iter<'_, T> {
    fn clone(&self) -> Self {
        Iter { chunks: self.chunks, next: self.next, len: self.len }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replacing_one_shares_the_other_chunks_and_keeps_order() {
        let n = 3 * CHUNK + 7;
        let slots = Slots::new((0..n).map(Arc::new).collect());
        assert_eq!(slots.iter().len(), n);
        assert!(slots.iter().map(|v| **v).eq(0..n));
        let next = slots.with(CHUNK + 5, Arc::new(usize::MAX)).unwrap();
        assert_eq!(**next.get(CHUNK + 5).unwrap(), usize::MAX);
        assert_eq!(**slots.get(CHUNK + 5).unwrap(), CHUNK + 5, "the old version is untouched");
        for i in (0..n).filter(|&i| i != CHUNK + 5) {
            assert!(Arc::ptr_eq(next.get(i).unwrap(), slots.get(i).unwrap()));
        }
        assert!(Arc::ptr_eq(&next.chunks[0], &slots.chunks[0]), "untouched chunks are shared, not copied");
        assert!(next.get(n).is_none());
        assert!(next.with(n, Arc::new(0)).is_none());
        assert_eq!(next.iter().len(), n);
    }

    #[test]
    fn empty_and_partial_chunks() {
        let empty: Slots<u8> = Slots::new(Vec::new());
        assert_eq!(empty.iter().count(), 0);
        assert!(empty.get(0).is_none());
        let one = Slots::new(vec![Arc::new(1u8)]);
        assert!(one.with(1, Arc::new(2)).is_none());
        assert_eq!(**one.with(0, Arc::new(2)).unwrap().get(0).unwrap(), 2);
    }
}
