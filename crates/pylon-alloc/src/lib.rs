//! Pylon's global allocator: mimalloc, called without its aligned entry points when the
//! alignment asked for is one every mimalloc block already has.
//!
//! Why not `mimalloc::MiMalloc` as is: it sends every allocation through
//! `mi_malloc_aligned(size, align)`. In mimalloc 3 that call takes the fast path only for
//! blocks up to 1 KiB whose free slot happens to be aligned; a larger block (a request
//! head, a body buffer, a header map's table) whose size class is not a power of two goes
//! through the generic aligned path and its over-allocation fallback, about 150
//! instructions more than `mi_malloc`. A proxied request makes ~20 of those (measured with
//! callgrind: 72 allocations a request, 23 on the slow path — 3.4k instructions, 5% of a
//! request with three middlewares). Every mimalloc block is a multiple of the word size
//! from a 16-byte aligned start, so any alignment up to a word is met by `mi_malloc`
//! itself; larger alignments (tokio's cache-padded task cells) still go to the aligned
//! calls.

use core::alloc::{GlobalAlloc, Layout};
use core::ffi::c_void;
use libmimalloc_sys as mi;

/// Alignments `mi_malloc` always meets (every block size is a multiple of a word).
const NATURAL_ALIGN: usize = core::mem::size_of::<usize>();

/// mimalloc with the aligned calls kept for alignments above a word.
pub struct PylonAlloc;

// SAFETY: (the trait's contract) each method hands mimalloc the layout's size and returns
// what mimalloc returns (null on failure). The block meets `layout.align()`: up to a word
// because every mimalloc block is a word multiple from an aligned start (NATURAL_ALIGN),
// above that because the `_aligned` calls are used. `dealloc` and `realloc` get only
// pointers this allocator gave out, which mimalloc's free and realloc accept whichever
// entry point made them.
unsafe impl GlobalAlloc for PylonAlloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let (size, align) = (layout.size(), layout.align());
        // SAFETY: plain C calls with a size (and a power-of-two alignment from `Layout`).
        unsafe {
            if align <= NATURAL_ALIGN {
                mi::mi_malloc(size).cast()
            } else {
                mi::mi_malloc_aligned(size, align).cast()
            }
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let (size, align) = (layout.size(), layout.align());
        // SAFETY: as in `alloc`.
        unsafe {
            if align <= NATURAL_ALIGN {
                mi::mi_zalloc(size).cast()
            } else {
                mi::mi_zalloc_aligned(size, align).cast()
            }
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        // SAFETY: `ptr` came from this allocator, so from mimalloc (the caller's contract).
        unsafe { mi::mi_free(ptr.cast::<c_void>()) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let align = layout.align();
        // SAFETY: `ptr` came from this allocator with `layout` (the caller's contract); the
        // new block keeps the alignment by the same rule as `alloc`.
        unsafe {
            if align <= NATURAL_ALIGN {
                mi::mi_realloc(ptr.cast::<c_void>(), new_size).cast()
            } else {
                mi::mi_realloc_aligned(ptr.cast::<c_void>(), new_size, align).cast()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sizes around mimalloc's small/large boundary (1 KiB) and its size classes, with
    /// every alignment from 1 to 4 KiB: each block is aligned, writable over its whole
    /// size, and keeps its bytes through a grow and a shrink.
    #[test]
    fn blocks_are_aligned_writable_and_survive_realloc() {
        let sizes = [
            1, 7, 8, 9, 24, 40, 100, 1000, 1024, 1025, 1500, 3000, 4096, 70_000,
        ];
        for size in sizes {
            for align in (0..=12).map(|shift| 1usize << shift) {
                let layout = Layout::from_size_align(size, align).unwrap();
                // SAFETY: every pointer is used within the size it was (re)allocated
                // with, and freed once with the layout it was made with.
                unsafe {
                    let p = PylonAlloc.alloc(layout);
                    assert!(!p.is_null());
                    assert_eq!(p as usize % align, 0, "size {size} align {align}");
                    for i in 0..size {
                        p.add(i).write(i as u8);
                    }
                    let grown = PylonAlloc.realloc(p, layout, size * 3);
                    assert_eq!(grown as usize % align, 0, "grown {size} align {align}");
                    assert!((0..size).all(|i| grown.add(i).read() == i as u8));
                    let shrunk = PylonAlloc.realloc(grown, layout, size.div_ceil(2));
                    assert_eq!(shrunk as usize % align, 0, "shrunk {size} align {align}");
                    assert!((0..size.div_ceil(2)).all(|i| shrunk.add(i).read() == i as u8));
                    PylonAlloc.dealloc(shrunk, layout);

                    let z = PylonAlloc.alloc_zeroed(layout);
                    assert_eq!(z as usize % align, 0, "zeroed {size} align {align}");
                    assert!((0..size).all(|i| z.add(i).read() == 0));
                    PylonAlloc.dealloc(z, layout);
                }
            }
        }
    }
}
