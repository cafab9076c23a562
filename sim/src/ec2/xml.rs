//! Writing EC2's XML: `<ActionResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">`
//! with a `requestId`, lists as `<…Set><item>`, and the error document.

use std::fmt::Display;

use quick_xml::escape::escape;

/// The namespace of every EC2 response.
pub const NAMESPACE: &str = "http://ec2.amazonaws.com/doc/2016-11-15/";

/// A small XML writer: elements are opened and closed in order, text is escaped.
#[derive(Default)]
pub struct Xml {
    out: String,
}

impl Xml {
    pub fn open(&mut self, tag: &str) -> &mut Self {
        self.out.push('<');
        self.out.push_str(tag);
        self.out.push('>');
        self
    }

    pub fn close(&mut self, tag: &str) -> &mut Self {
        self.out.push_str("</");
        self.out.push_str(tag);
        self.out.push('>');
        self
    }

    /// `<tag>value</tag>`.
    pub fn leaf(&mut self, tag: &str, value: impl Display) -> &mut Self {
        let text = value.to_string();
        self.open(tag);
        self.out.push_str(&escape(text.as_str()));
        self.close(tag)
    }

    /// Escaped text with no element around it (a list item's value).
    pub fn leaf_text(&mut self, value: impl Display) -> &mut Self {
        let text = value.to_string();
        self.out.push_str(&escape(text.as_str()));
        self
    }

    /// `<tag>value</tag>` only when there is a value.
    pub fn maybe(&mut self, tag: &str, value: Option<impl Display>) -> &mut Self {
        if let Some(value) = value {
            self.leaf(tag, value);
        }
        self
    }

    /// `<tag><item>…</item>…</tag>`, each item written by `write`.
    pub fn set<T>(
        &mut self,
        tag: &str,
        items: impl IntoIterator<Item = T>,
        mut write: impl FnMut(&mut Xml, T),
    ) -> &mut Self {
        self.open(tag);
        for item in items {
            self.open("item");
            write(self, item);
            self.close("item");
        }
        self.close(tag)
    }

    /// `<tagSet>` of key/value items.
    pub fn tag_set<'a>(
        &mut self,
        tags: impl IntoIterator<Item = (&'a String, &'a String)>,
    ) -> &mut Self {
        self.set("tagSet", tags, |x, (k, v)| {
            x.leaf("key", k).leaf("value", v);
        })
    }

    pub fn into_string(self) -> String {
        self.out
    }
}

/// A success document: `<{action}Response xmlns=…><requestId>…</requestId>{body}</…>`.
pub fn response(action: &str, request_id: &str, body: Xml) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{action}Response xmlns=\"{NAMESPACE}\"><requestId>{request_id}</requestId>{}</{action}Response>",
        body.into_string()
    )
}

/// EC2's error document.
pub fn error(code: &str, message: &str, request_id: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>{}</Code><Message>{}</Message></Error></Errors><RequestID>{request_id}</RequestID></Response>",
        escape(code),
        escape(message)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_are_escaped_and_namespaced() {
        let mut body = Xml::default();
        body.leaf("value", "a<b&c").maybe("absent", None::<&str>);
        let doc = response("CreateTags", "r-1", body);
        assert!(
            doc.contains("<CreateTagsResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\">")
        );
        assert!(doc.contains("<value>a&lt;b&amp;c</value>"));
        assert!(!doc.contains("absent"));
        let err = error("InvalidParameterValue", "bad <filter>", "r-2");
        assert!(
            err.contains("<Code>InvalidParameterValue</Code><Message>bad &lt;filter&gt;</Message>")
        );
    }
}
