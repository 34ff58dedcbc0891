//! The table of contents of a segment (`storage/shm_toc.h`), with its estimator macros in Rust.

use super::dsm::Segment;
use super::TocKey;
use core::marker::PhantomData;
use core::ptr::NonNull;
use pgrx::pg_sys;

/// `ALIGNOF_BUFFER` of `pg_config_manual.h`.
const ALIGNOF_BUFFER: usize = 32;

/// `#define BUFFERALIGN(LEN) TYPEALIGN(ALIGNOF_BUFFER, (LEN))`
pub const fn buffer_align(len: usize) -> usize {
    (len + ALIGNOF_BUFFER - 1) & !(ALIGNOF_BUFFER - 1)
}

/// Size estimate for a segment, chunk by chunk, mirroring the later allocations.
#[derive(Default, Debug)]
pub struct TocEstimator {
    space_for_chunks: usize,
    number_of_keys: usize,
}

impl TocEstimator {
    /// `#define shm_toc_estimate_chunk(e, sz) \`
    /// `((e)->space_for_chunks = add_size((e)->space_for_chunks, BUFFERALIGN(sz)))`
    pub fn chunk(&mut self, size: usize) -> &mut Self {
        self.space_for_chunks = self
            .space_for_chunks
            .checked_add(buffer_align(size))
            .expect("segment size overflows size_t");
        self
    }

    /// `#define shm_toc_estimate_keys(e, cnt) \`
    /// `((e)->number_of_keys = add_size((e)->number_of_keys, cnt))`
    pub fn keys(&mut self, count: usize) -> &mut Self {
        self.number_of_keys += count;
        self
    }

    /// Total bytes, as `shm_toc_estimate` computes them.
    pub fn total(&self) -> usize {
        let mut e = pg_sys::shm_toc_estimator {
            space_for_chunks: self.space_for_chunks,
            number_of_keys: self.number_of_keys,
        };
        // SAFETY: pure arithmetic on the struct we pass.
        unsafe { pg_sys::shm_toc_estimate(&mut e) }
    }
}

/// A view of the table of contents of a segment; borrows the segment's owner.
pub struct Toc<'seg> {
    toc: NonNull<pg_sys::shm_toc>,
    _segment: PhantomData<&'seg ()>,
}

impl<'seg> Toc<'seg> {
    /// Lay out a new table of contents over the whole of `segment`, `size` bytes.
    pub fn create(segment: &'seg impl Segment, size: usize) -> Self {
        // SAFETY: the segment is attached, at least `size` bytes long, and ours to initialise.
        let toc = unsafe { pg_sys::shm_toc_create(super::MAGIC, segment.address().cast(), size) };
        Self {
            toc: NonNull::new(toc).expect("shm_toc_create returned NULL"),
            _segment: PhantomData,
        }
    }

    /// The table of contents of a segment another process created, if its magic number is ours.
    pub fn attach(segment: &'seg impl Segment) -> Option<Self> {
        // SAFETY: the segment is attached; shm_toc_attach only reads its header.
        let toc = unsafe { pg_sys::shm_toc_attach(super::MAGIC, segment.address().cast()) };
        NonNull::new(toc).map(|toc| Self {
            toc,
            _segment: PhantomData,
        })
    }

    /// Allocate `size` bytes and file them under `key`.
    pub fn allocate(&self, key: TocKey, size: usize) -> NonNull<u8> {
        // SAFETY: the table of contents is live; shm_toc_allocate raises ERROR when out of space
        // (an estimate mismatch), and `key` is inserted once per segment by the launcher.
        unsafe {
            let chunk = pg_sys::shm_toc_allocate(self.toc.as_ptr(), size);
            pg_sys::shm_toc_insert(self.toc.as_ptr(), key as u64, chunk);
            NonNull::new(chunk.cast()).expect("shm_toc_allocate returned NULL")
        }
    }

    /// The chunk filed under `key`.
    pub fn lookup(&self, key: TocKey) -> Option<NonNull<u8>> {
        // SAFETY: the table of contents is live; with noError = true a missing key gives NULL.
        let chunk = unsafe { pg_sys::shm_toc_lookup(self.toc.as_ptr(), key as u64, true) };
        NonNull::new(chunk.cast())
    }
}

#[cfg(test)]
mod tests {
    use super::buffer_align;

    #[test]
    fn buffer_align_rounds_up_to_32() {
        assert_eq!(buffer_align(0), 0);
        assert_eq!(buffer_align(1), 32);
        assert_eq!(buffer_align(32), 32);
        assert_eq!(buffer_align(33), 64);
        assert_eq!(buffer_align(65536), 65536);
    }
}
