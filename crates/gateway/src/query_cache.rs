//! Owns the cache of parsed GraphQL documents. Clients send the same few query texts over and
//! over (a frontend's operations, the load tool's pages) with different variables; parsing
//! one costs more than resolving a small answer, so a request whose exact text was parsed
//! before gets a copy of that document instead. Only the parse is skipped: validation, limits
//! and execution run for every request as before. Bounded in entries and in text length;
//! when full, the oldest entry goes.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use async_graphql::parser::types::ExecutableDocument;

/// Entries kept.
const CAPACITY: usize = 512;
/// Longest query text kept (longer ones are parsed every time).
const MAX_TEXT: usize = 16 * 1024;

/// Parsed documents by query text.
#[derive(Default)]
pub struct QueryCache {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    docs: HashMap<Arc<str>, ExecutableDocument>,
    order: VecDeque<Arc<str>>,
}

impl QueryCache {
    /// An empty cache.
    pub fn new() -> Self {
        QueryCache::default()
    }

    /// Gives `request` its parsed document: a copy of the cached one when its text was
    /// parsed before, else parses it (an error is left for execution to report) and keeps it.
    pub fn prepare(&self, request: &mut async_graphql::Request) {
        if request.query.len() > MAX_TEXT {
            return;
        }
        if let Some(doc) = self.get(&request.query) {
            request.set_parsed_query(doc);
            return;
        }
        if let Ok(doc) = request.parsed_query() {
            let doc = doc.clone();
            self.insert(&request.query, doc);
        }
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.lock().docs.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn get(&self, text: &str) -> Option<ExecutableDocument> {
        self.lock().docs.get(text).cloned()
    }

    fn insert(&self, text: &str, doc: ExecutableDocument) {
        let mut inner = self.lock();
        if inner.docs.contains_key(text) {
            return;
        }
        while inner.docs.len() >= CAPACITY {
            let Some(oldest) = inner.order.pop_front() else {
                break;
            };
            inner.docs.remove(&oldest);
        }
        let key: Arc<str> = Arc::from(text);
        inner.order.push_back(Arc::clone(&key));
        inner.docs.insert(key, doc);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // The map is valid after any panic mid-operation (insert/remove are single calls).
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(text: &str) -> async_graphql::Request {
        async_graphql::Request::new(text)
    }

    #[test]
    fn a_repeated_text_gets_the_document_parsed_the_first_time() {
        // Given a cache that has seen one query,
        let cache = QueryCache::new();
        let mut first = request("query($id: ID!) { customer(id: $id) { id } }");
        cache.prepare(&mut first);
        assert_eq!(cache.len(), 1);
        // when the same text comes again, it is not parsed again but handed the same document,
        let mut again = request("query($id: ID!) { customer(id: $id) { id } }");
        cache.prepare(&mut again);
        assert_eq!(cache.len(), 1);
        let a = format!("{:?}", first.parsed_query().expect("parsed"));
        let b = format!("{:?}", again.parsed_query().expect("cached"));
        assert_eq!(a, b);
        // and a text that does not parse is not kept (its error is left for execution).
        let mut broken = request("query { customer(");
        cache.prepare(&mut broken);
        assert_eq!(cache.len(), 1);
        assert!(broken.parsed_query().is_err());
    }

    #[test]
    fn the_cache_is_bounded_and_forgets_the_oldest_first() {
        let cache = QueryCache::new();
        for i in 0..CAPACITY + 10 {
            cache.prepare(&mut request(&format!("query q{i} {{ __typename }}")));
        }
        assert_eq!(cache.len(), CAPACITY);
        assert!(cache.get("query q0 { __typename }").is_none());
        let newest = format!("query q{} {{ __typename }}", CAPACITY + 9);
        assert!(cache.get(&newest).is_some());
        // Very long texts are parsed every time, never kept.
        let long = format!("query {{ __typename }} # {}", "x".repeat(MAX_TEXT));
        cache.prepare(&mut request(&long));
        assert!(cache.get(&long).is_none());
    }
}
