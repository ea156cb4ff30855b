//! A queue whose first element lives inline: a call's inbox and its run-ahead sizes usually
//! hold one entry at a time, and then cost no allocation.

use std::collections::VecDeque;

/// A FIFO queue like `VecDeque`, allocating only once two entries wait at the same time.
#[derive(Debug)]
pub(crate) struct SmallDeque<T> {
    /// The oldest entry, when it is not in `rest`.
    first: Option<T>,
    /// The entries after `first` (all of them once `first` was taken while they waited).
    rest: VecDeque<T>,
}

impl<T> Default for SmallDeque<T> {
    fn default() -> Self {
        Self {
            first: None,
            rest: VecDeque::new(),
        }
    }
}

impl<T> SmallDeque<T> {
    /// Adds `value` after the others.
    pub(crate) fn push_back(&mut self, value: T) {
        if self.first.is_none() && self.rest.is_empty() {
            self.first = Some(value);
        } else {
            self.rest.push_back(value);
        }
    }

    /// Takes the oldest entry.
    pub(crate) fn pop_front(&mut self) -> Option<T> {
        self.first.take().or_else(|| self.rest.pop_front())
    }

    /// How many entries wait.
    pub(crate) fn len(&self) -> usize {
        usize::from(self.first.is_some()) + self.rest.len()
    }

    /// `true` when none waits.
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops every entry.
    pub(crate) fn clear(&mut self) {
        self.first = None;
        self.rest.clear();
    }

    /// Takes every entry, oldest first.
    pub(crate) fn drain(&mut self) -> impl Iterator<Item = T> + '_ {
        self.first.take().into_iter().chain(self.rest.drain(..))
    }

    /// Adds `values` after the others, in order.
    pub(crate) fn extend(&mut self, values: impl IntoIterator<Item = T>) {
        for value in values {
            self.push_back(value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::SmallDeque;

    #[test]
    fn entries_come_out_in_order_however_they_were_stored() {
        let mut queue = SmallDeque::default();
        assert!(queue.is_empty());
        queue.push_back(1);
        queue.push_back(2);
        assert_eq!(queue.pop_front(), Some(1));
        queue.push_back(3);
        queue.push_back(4);
        assert_eq!(queue.len(), 3);
        assert_eq!(queue.pop_front(), Some(2));
        assert_eq!(queue.drain().collect::<Vec<_>>(), [3, 4]);
        queue.extend([5, 6]);
        assert_eq!(queue.pop_front(), Some(5));
        queue.clear();
        assert_eq!(queue.pop_front(), None);
        assert!(queue.is_empty());
    }

    #[test]
    fn one_entry_at_a_time_never_allocates() {
        let mut queue = SmallDeque::default();
        for i in 0..100 {
            queue.push_back(i);
            assert_eq!(queue.pop_front(), Some(i));
        }
        assert_eq!(queue.rest.capacity(), 0);
    }
}
