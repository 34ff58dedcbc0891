//! Owner types for a dynamic shared memory segment (`storage/dsm.h`).
//!
//! A [`DsmSegment`] is still tracked by the current resource owner, so an ERROR before it is
//! pinned detaches it with the transaction; [`DsmSegment::pin_mapping`] turns it into a
//! [`PinnedSegment`] that lives until its owner drops it, across transactions.

use core::ptr::NonNull;
use pgrx::pg_sys;

/// What both segment states offer.
pub trait Segment {
    fn as_ptr(&self) -> *mut pg_sys::dsm_segment;

    /// Start of the mapping in this process.
    fn address(&self) -> *mut u8 {
        // SAFETY: `as_ptr` is a live, attached segment for as long as `self` exists.
        unsafe { pg_sys::dsm_segment_address(self.as_ptr()).cast() }
    }

    /// The handle another process passes to `dsm_attach`.
    fn handle(&self) -> pg_sys::dsm_handle {
        // SAFETY: as above.
        unsafe { pg_sys::dsm_segment_handle(self.as_ptr()) }
    }
}

/// A segment this backend created or attached, owned by the current resource owner.
pub struct DsmSegment {
    seg: NonNull<pg_sys::dsm_segment>,
}

impl DsmSegment {
    /// Create a segment of `size` bytes. Raises core's ERROR when no segment can be had.
    pub fn create(size: usize) -> Self {
        // SAFETY: plain call; with flags 0 `dsm_create` either returns a segment or raises ERROR.
        let seg = unsafe { pg_sys::dsm_create(size, 0) };
        Self {
            seg: NonNull::new(seg).expect("dsm_create returned NULL without flags"),
        }
    }

    /// Map the segment `handle` into this process, or `None` if it no longer exists.
    pub fn attach(handle: pg_sys::dsm_handle) -> Option<Self> {
        // SAFETY: plain call; returns NULL when the segment is gone.
        let seg = unsafe { pg_sys::dsm_attach(handle) };
        NonNull::new(seg).map(|seg| Self { seg })
    }

    /// Map the segment `handle` for as long as the returned owner lives, tracked by no resource
    /// owner (so also from an exit callback, when the current one may be releasing). `None` if
    /// the segment no longer exists or this backend maps it already (then it is not the one
    /// the caller means: handles are reused once a segment is gone).
    pub fn attach_untracked(handle: pg_sys::dsm_handle) -> Option<PinnedSegment> {
        // SAFETY: plain look-up of this backend's own mappings.
        if !unsafe { pg_sys::dsm_find_mapping(handle) }.is_null() {
            return None;
        }
        struct RestoreOwner(pg_sys::ResourceOwner);
        impl Drop for RestoreOwner {
            fn drop(&mut self) {
                // SAFETY: putting back the owner that was current before.
                unsafe { pg_sys::CurrentResourceOwner = self.0 };
            }
        }
        // SAFETY: with no current resource owner dsm_attach makes a session-lifetime mapping;
        // the owner is put back when this scope ends, also on an ERROR.
        let _restore = unsafe {
            let restore = RestoreOwner(pg_sys::CurrentResourceOwner);
            pg_sys::CurrentResourceOwner = core::ptr::null_mut();
            restore
        };
        // SAFETY: plain call; returns NULL when the segment is gone.
        let seg = unsafe { pg_sys::dsm_attach(handle) };
        NonNull::new(seg).map(|seg| PinnedSegment { seg })
    }

    /// Keep the mapping until the returned owner is dropped, whatever happens to the current
    /// transaction (`dsm_pin_mapping`).
    pub fn pin_mapping(self) -> PinnedSegment {
        let seg = self.seg;
        core::mem::forget(self);
        // SAFETY: `seg` is attached; pinning only removes it from the resource owner.
        unsafe { pg_sys::dsm_pin_mapping(seg.as_ptr()) };
        PinnedSegment { seg }
    }
}

impl Segment for DsmSegment {
    fn as_ptr(&self) -> *mut pg_sys::dsm_segment {
        self.seg.as_ptr()
    }
}

impl Drop for DsmSegment {
    /// Detaches at once. During an ERROR the resource owner would detach it a little later;
    /// detaching first is allowed (`dsm_detach` forgets it in the resource owner).
    fn drop(&mut self) {
        // SAFETY: we own the mapping and nobody uses it after this.
        unsafe { pg_sys::dsm_detach(self.seg.as_ptr()) };
    }
}

/// A segment whose mapping outlives transactions; detached when dropped.
pub struct PinnedSegment {
    seg: NonNull<pg_sys::dsm_segment>,
}

impl Segment for PinnedSegment {
    fn as_ptr(&self) -> *mut pg_sys::dsm_segment {
        self.seg.as_ptr()
    }
}

impl Drop for PinnedSegment {
    fn drop(&mut self) {
        // SAFETY: we own the pinned mapping; detaching a pinned mapping is allowed and runs the
        // segment's on_dsm_detach callbacks.
        unsafe { pg_sys::dsm_detach(self.seg.as_ptr()) };
    }
}
