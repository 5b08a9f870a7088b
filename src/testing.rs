//! Helpers shared by the unit tests of more than one module.

use proptest::prelude::*;

/// What `base` makes, then perhaps one byte changed, inserted or dropped, or the end cut off:
/// the damaged input of the parsers' differential tests.
pub(crate) fn damaged(base: impl Strategy<Value = Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    (base, any::<prop::sample::Index>(), any::<u8>(), 0u8..5).prop_map(
        |(mut bytes, at, byte, how)| {
            let i = at.index(bytes.len());
            match how {
                0 => bytes[i] = byte,
                1 => bytes.insert(i, byte),
                2 => {
                    bytes.remove(i);
                }
                3 => bytes.truncate(i),
                _ => {}
            }
            bytes
        },
    )
}
