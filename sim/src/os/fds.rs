//! File descriptors (placeholder: filled in by the fds work).

use super::resources::BuiltinKinds;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Fd(pub u32);

pub(crate) struct FdsState {
    #[allow(dead_code)]
    kinds: BuiltinKinds,
}

impl FdsState {
    pub(crate) fn new(kinds: BuiltinKinds) -> FdsState {
        FdsState { kinds }
    }
}
