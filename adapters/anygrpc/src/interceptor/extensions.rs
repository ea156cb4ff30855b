//! Typed per-call data: what a server interceptor attaches for the handler to read.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;

/// A map from type to one value of that type, carried by a call: a server interceptor
/// [`insert`](Self::insert)s what it learned (the authenticated user, a request id) into
/// [`ServerCallDetails::extensions`](crate::ServerCallDetails::extensions), and the handler
/// reads it from [`ServicerContext::extensions`](crate::ServicerContext::extensions).
///
/// ```
/// use anygrpc::Extensions;
///
/// #[derive(Debug, PartialEq)]
/// struct User(String);
///
/// let mut extensions = Extensions::new();
/// assert!(extensions.insert(User("ada".into())).is_none());
/// assert_eq!(extensions.get::<User>(), Some(&User("ada".into())));
/// assert_eq!(extensions.get::<u32>(), None);
/// ```
#[derive(Default)]
pub struct Extensions {
    /// Allocated at the first insert: most calls carry none, and pay one pointer for it.
    #[allow(
        clippy::box_collection,
        reason = "one word per call without extensions"
    )]
    map: Option<Box<HashMap<TypeId, Box<dyn Any + Send + Sync>>>>,
}

impl Extensions {
    /// An empty map (allocates nothing).
    pub fn new() -> Self {
        Self::default()
    }

    /// Stores `value`, giving back the value of its type stored before.
    pub fn insert<T: Send + Sync + 'static>(&mut self, value: T) -> Option<T> {
        self.map
            .get_or_insert_with(Box::default)
            .insert(TypeId::of::<T>(), Box::new(value))
            .and_then(|old| old.downcast().ok().map(|old| *old))
    }

    /// The stored value of type `T`.
    pub fn get<T: Send + Sync + 'static>(&self) -> Option<&T> {
        self.map
            .as_ref()?
            .get(&TypeId::of::<T>())
            .and_then(|value| value.downcast_ref())
    }

    /// The stored value of type `T`, to change in place.
    pub fn get_mut<T: Send + Sync + 'static>(&mut self) -> Option<&mut T> {
        self.map
            .as_mut()?
            .get_mut(&TypeId::of::<T>())
            .and_then(|value| value.downcast_mut())
    }

    /// Takes the stored value of type `T` out.
    pub fn remove<T: Send + Sync + 'static>(&mut self) -> Option<T> {
        self.map
            .as_mut()?
            .remove(&TypeId::of::<T>())
            .and_then(|value| value.downcast().ok().map(|value| *value))
    }

    /// How many values are stored.
    pub fn len(&self) -> usize {
        self.map.as_ref().map_or(0, |map| map.len())
    }

    /// `true` when nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl fmt::Debug for Extensions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Extensions")
            .field("len", &self.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_value_per_type() {
        let mut extensions = Extensions::new();
        assert!(extensions.is_empty());
        assert_eq!(extensions.insert(1u32), None);
        assert_eq!(extensions.insert(2u32), Some(1));
        assert_eq!(extensions.insert(String::from("x")), None);
        assert_eq!(extensions.len(), 2);
        *extensions.get_mut::<u32>().expect("stored") += 5;
        assert_eq!(extensions.get::<u32>(), Some(&7));
        assert_eq!(extensions.remove::<String>().as_deref(), Some("x"));
        assert_eq!(extensions.remove::<String>(), None);
        assert_eq!(extensions.get::<u64>(), None);
    }
}
