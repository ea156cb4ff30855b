//! A FIFO that keeps its first element inline, so the common case of one queued item (one
//! DATA payload being split into messages, one message being sent) allocates nothing.

use std::collections::VecDeque;

/// A queue whose front element lives inline; the rest spill into a `VecDeque`.
#[derive(Debug, Clone)]
pub(crate) struct InlineQueue<T> {
    head: Option<T>,
    rest: VecDeque<T>,
}

impl<T> Default for InlineQueue<T> {
    fn default() -> Self {
        Self {
            head: None,
            rest: VecDeque::new(),
        }
    }
}

impl<T> InlineQueue<T> {
    /// Appends at the back.
    pub(crate) fn push_back(&mut self, item: T) {
        if self.head.is_none() {
            self.head = Some(item);
        } else {
            self.rest.push_back(item);
        }
    }

    /// The front element.
    pub(crate) fn front_mut(&mut self) -> Option<&mut T> {
        self.head.as_mut()
    }

    /// Removes the front element.
    pub(crate) fn pop_front(&mut self) -> Option<T> {
        let item = self.head.take();
        self.head = self.rest.pop_front();
        item
    }

    /// The elements, front to back.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &T> {
        self.head.iter().chain(self.rest.iter())
    }

    /// Removes everything.
    pub(crate) fn clear(&mut self) {
        self.head = None;
        self.rest.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_order_across_inline_and_spilled_items() {
        let mut q = InlineQueue::default();
        assert!(q.front_mut().is_none());
        for i in 0..5 {
            q.push_back(i);
            assert_eq!(
                q.iter().copied().collect::<Vec<_>>(),
                (0..=i).collect::<Vec<_>>()
            );
        }
        *q.front_mut().unwrap() += 10;
        assert_eq!(q.pop_front(), Some(10));
        q.push_back(5);
        let drained: Vec<_> = std::iter::from_fn(|| q.pop_front()).collect();
        assert_eq!(drained, vec![1, 2, 3, 4, 5]);
        assert!(q.front_mut().is_none());
        q.push_back(7);
        q.clear();
        assert_eq!(q.pop_front(), None);
    }
}
