//! The parameter sets (VPS/SPS/PPS) a video stream has sent, by type and id, so a new
//! decoder configuration is built exactly when one of them changes.

use bytes::Bytes;

/// Most parameter sets remembered per stream (H.264 allows 32 SPS and 256 PPS; streams use
/// a handful). Further ids are ignored.
const MAX_SETS: usize = 64;

/// Parameter sets by (NAL type, id), in the order they first arrived.
#[derive(Debug, Default, Clone)]
pub(crate) struct ParamSets {
    sets: Vec<(u8, u32, Bytes)>,
    changed: bool,
}

impl ParamSets {
    /// Stores a set; notes a change when it is new or its bytes differ.
    pub(crate) fn insert(&mut self, nal_type: u8, id: u32, nal: &[u8]) {
        let full = self.sets.len() >= MAX_SETS;
        match self
            .sets
            .iter_mut()
            .find(|(t, i, _)| *t == nal_type && *i == id)
        {
            Some(entry) if entry.2[..] == *nal => {}
            Some(entry) => {
                entry.2 = Bytes::copy_from_slice(nal);
                self.changed = true;
            }
            None if !full => {
                self.sets.push((nal_type, id, Bytes::copy_from_slice(nal)));
                self.changed = true;
            }
            None => {}
        }
    }

    /// The sets of one NAL type, in arrival order.
    pub(crate) fn of_type(&self, nal_type: u8) -> impl Iterator<Item = &[u8]> + Clone {
        self.sets
            .iter()
            .filter(move |(t, _, _)| *t == nal_type)
            .map(|(_, _, b)| &b[..])
    }

    /// Whether a set changed since the last call (and clears the mark).
    pub(crate) fn take_changed(&mut self) -> bool {
        std::mem::take(&mut self.changed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn change_only_on_new_bytes() {
        let mut p = ParamSets::default();
        p.insert(7, 0, &[0x67, 1]);
        assert!(p.take_changed());
        p.insert(7, 0, &[0x67, 1]);
        assert!(!p.take_changed());
        p.insert(8, 0, &[0x68, 1]);
        p.insert(7, 0, &[0x67, 2]);
        assert!(p.take_changed());
        assert_eq!(p.of_type(7).collect::<Vec<_>>(), vec![&[0x67, 2][..]]);
        for id in 0..100 {
            p.insert(8, id, &[0x68]);
        }
        assert_eq!(p.of_type(8).count(), MAX_SETS - 1);
    }
}
