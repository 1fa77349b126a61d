//! `sku` tables: their normalising steps, rules, tests and where they apply.

use super::Lower;
use crate::ir::*;
use crate::syntax::ast;

impl Lower<'_> {
    pub(super) fn sku(&self, s: &ast::SkuTable) -> SkuTable {
        let steps = steps_of(s);
        SkuTable {
            name: s.name.name.clone(),
            products: s.products.iter().map(|(p, _)| p.clone()).collect(),
            rules: s
                .rules
                .iter()
                .map(|r| SkuRule {
                    patterns: r
                        .patterns
                        .iter()
                        .map(|p| match p {
                            ast::SkuPattern::Alias(a) => {
                                Pattern::Alias(crate::sku::normalize(&steps, &a.value))
                            }
                            ast::SkuPattern::Regex { source, .. } => Pattern::Regex(source.clone()),
                        })
                        .collect(),
                    target: r.target.0.clone(),
                    loc: self.loc(r.span),
                })
                .collect(),
            tests: s
                .tests
                .iter()
                .map(|t| SkuTest {
                    input: t.input.value.clone(),
                    expected: t.expected.as_ref().map(|(p, _)| p.clone()),
                    loc: self.loc(t.span),
                })
                .collect(),
            applies: s
                .applies
                .iter()
                .map(|a| SkuApply {
                    source: self.resolve(&a.source, None),
                    target: self.field_ref(&a.conn.name, &a.field).0,
                    loc: self.loc(a.span),
                })
                .collect(),
            steps,
            loc: self.loc(s.span),
            compiled: CompiledSku::default(),
        }
    }
}

/// Unknown steps were reported by the checker; lowering only runs clean.
fn steps_of(s: &ast::SkuTable) -> Vec<Step> {
    s.normalize
        .iter()
        .filter_map(|st| Step::from_name(&st.name.name, st.arg.as_ref().map(|a| a.value.as_str())))
        .collect()
}
