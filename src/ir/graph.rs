//! A status table as a graph: what `l3map graph` and the ops console draw.

use super::StatusTable;

impl StatusTable {
    /// Its edges `(from, to, transition index)` in source order, a `*`
    /// transition drawn once from the pseudo-status `*`.
    pub fn edges(&self) -> Vec<(String, String, usize)> {
        let mut out = Vec::new();
        for (i, tr) in self.transitions.iter().enumerate() {
            let froms: Vec<String> = if tr.wildcard {
                vec!["*".into()]
            } else {
                tr.from.clone()
            };
            for f in &froms {
                for to in &tr.to {
                    out.push((f.clone(), to.clone(), i));
                }
            }
        }
        out
    }
}
