//! The two sequence comparisons behind the diff-based measures, over sentence ids:
//! - [`edit_distance`]: the exact minimum number of sentence insertions and deletions that turn
//!   one sequence into the other (Myers' O((N+M)D) algorithm, so nearly unchanged filings cost
//!   little however long they are);
//! - [`matching_blocks`]: the matching blocks of Python's `difflib.SequenceMatcher` with no junk
//!   and `autojunk=False`, reproduced step for step (the same longest-match choice and the same
//!   tie-breaking), because the "simple" measure is defined as what a diff reports and the
//!   reference implementation uses difflib. Its blocks are not always a minimal diff, which is
//!   why the edit measure does not use them.

/// Minimum number of insertions plus deletions turning `a` into `b`.
pub fn edit_distance(a: &[u32], b: &[u32]) -> usize {
    let prefix = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let (a, b) = (&a[prefix..], &b[prefix..]);
    let suffix = a
        .iter()
        .rev()
        .zip(b.iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let (a, b) = (&a[..a.len() - suffix], &b[..b.len() - suffix]);
    let (n, m) = (a.len() as isize, b.len() as isize);
    if n == 0 || m == 0 {
        return (n + m) as usize;
    }
    let max = n + m;
    let offset = max + 1;
    // v[k + offset]: the furthest x reached on diagonal k = x - y.
    let mut v = vec![0isize; (2 * max + 3) as usize];
    for d in 0..=max {
        let mut k = -d;
        while k <= d {
            let index = (k + offset) as usize;
            let mut x = if k == -d || (k != d && v[index - 1] < v[index + 1]) {
                v[index + 1]
            } else {
                v[index - 1] + 1
            };
            let mut y = x - k;
            while x < n && y < m && a[x as usize] == b[y as usize] {
                x += 1;
                y += 1;
            }
            v[index] = x;
            if x >= n && y >= m {
                return d as usize;
            }
            k += 2;
        }
    }
    max as usize
}

/// One run of equal elements: `a[a_start..a_start + len] == b[b_start..b_start + len]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Block {
    pub a_start: usize,
    pub b_start: usize,
    pub len: usize,
}

/// `difflib.SequenceMatcher(None, a, b, autojunk=False).get_matching_blocks()` without its final
/// zero-length sentinel. `vocabulary` bounds the ids.
pub fn matching_blocks(a: &[u32], b: &[u32], vocabulary: usize) -> Vec<Block> {
    let mut matcher = Matcher::new(a, b, vocabulary);
    let mut blocks = Vec::new();
    let mut queue = vec![(0, a.len(), 0, b.len())];
    while let Some((alo, ahi, blo, bhi)) = queue.pop() {
        let found = matcher.longest_match(alo, ahi, blo, bhi);
        if found.len == 0 {
            continue;
        }
        blocks.push(found);
        if alo < found.a_start && blo < found.b_start {
            queue.push((alo, found.a_start, blo, found.b_start));
        }
        if found.a_start + found.len < ahi && found.b_start + found.len < bhi {
            queue.push((
                found.a_start + found.len,
                ahi,
                found.b_start + found.len,
                bhi,
            ));
        }
    }
    blocks.sort();
    // Adjacent blocks are merged, as difflib does.
    let mut merged: Vec<Block> = Vec::with_capacity(blocks.len());
    for block in blocks {
        match merged.last_mut() {
            Some(last)
                if last.a_start + last.len == block.a_start
                    && last.b_start + last.len == block.b_start =>
            {
                last.len += block.len;
            }
            _ => merged.push(block),
        }
    }
    merged
}

/// difflib's `find_longest_match` state: `b2j` as one array per id, and the `j2len` rows as two
/// arrays stamped with the row they belong to (instead of a fresh dictionary per row).
struct Matcher<'a> {
    a: &'a [u32],
    b: &'a [u32],
    b2j_start: Vec<u32>,
    b2j: Vec<u32>,
    prev_len: Vec<u32>,
    prev_stamp: Vec<u32>,
    cur_len: Vec<u32>,
    cur_stamp: Vec<u32>,
    stamp: u32,
}

impl<'a> Matcher<'a> {
    fn new(a: &'a [u32], b: &'a [u32], vocabulary: usize) -> Matcher<'a> {
        let mut counts = vec![0u32; vocabulary + 1];
        for &x in b {
            counts[x as usize + 1] += 1;
        }
        for i in 1..counts.len() {
            counts[i] += counts[i - 1];
        }
        let b2j_start = counts.clone();
        let mut fill = counts;
        let mut b2j = vec![0u32; b.len()];
        for (j, &x) in b.iter().enumerate() {
            b2j[fill[x as usize] as usize] = j as u32;
            fill[x as usize] += 1;
        }
        Matcher {
            a,
            b,
            b2j_start,
            b2j,
            prev_len: vec![0; b.len()],
            prev_stamp: vec![0; b.len()],
            cur_len: vec![0; b.len()],
            cur_stamp: vec![0; b.len()],
            stamp: 0,
        }
    }

    fn longest_match(&mut self, alo: usize, ahi: usize, blo: usize, bhi: usize) -> Block {
        let (mut best_i, mut best_j, mut best_len) = (alo, blo, 0usize);
        // A stamp no row was written with: the first row finds no previous one.
        self.stamp += 1;
        for i in alo..ahi {
            self.stamp += 1;
            let row = self.stamp;
            let x = self.a[i] as usize;
            let positions = &self.b2j[self.b2j_start[x] as usize..self.b2j_start[x + 1] as usize];
            for &j in positions {
                let j = j as usize;
                if j < blo {
                    continue;
                }
                if j >= bhi {
                    break;
                }
                let before = if j > 0 && self.prev_stamp[j - 1] == row - 1 {
                    self.prev_len[j - 1]
                } else {
                    0
                };
                let k = before + 1;
                self.cur_len[j] = k;
                self.cur_stamp[j] = row;
                if k as usize > best_len {
                    best_i = i + 1 - k as usize;
                    best_j = j + 1 - k as usize;
                    best_len = k as usize;
                }
            }
            std::mem::swap(&mut self.prev_len, &mut self.cur_len);
            std::mem::swap(&mut self.prev_stamp, &mut self.cur_stamp);
        }
        // difflib then extends the match over equal neighbours (which matters only with junk).
        while best_i > alo && best_j > blo && self.a[best_i - 1] == self.b[best_j - 1] {
            best_i -= 1;
            best_j -= 1;
            best_len += 1;
        }
        while best_i + best_len < ahi
            && best_j + best_len < bhi
            && self.a[best_i + best_len] == self.b[best_j + best_len]
        {
            best_len += 1;
        }
        Block {
            a_start: best_i,
            b_start: best_j,
            len: best_len,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Plain dynamic-programming LCS, the definition the fast algorithm must agree with.
    fn lcs(a: &[u32], b: &[u32]) -> usize {
        let mut row = vec![0usize; b.len() + 1];
        for &x in a {
            let mut diagonal = 0;
            for (j, &y) in b.iter().enumerate() {
                let up = row[j + 1];
                row[j + 1] = if x == y { diagonal + 1 } else { up.max(row[j]) };
                diagonal = up;
            }
        }
        row[b.len()]
    }

    #[test]
    fn edit_distance_is_insertions_plus_deletions() {
        let cases: &[(&[u32], &[u32], usize)] = &[
            (&[], &[], 0),
            (&[1, 2, 3], &[1, 2, 3], 0),
            (&[1, 2, 3], &[], 3),
            (&[], &[4, 5], 2),
            (&[1, 2, 3], &[1, 9, 3], 2),
            (&[1, 2, 3, 4], &[3, 4, 1, 2], 4),
            (&[1, 2, 3], &[4, 5, 6], 6),
            (&[1, 1, 1, 2], &[1, 2, 2, 2], 4),
        ];
        for (a, b, want) in cases {
            assert_eq!(edit_distance(a, b), *want, "{a:?} {b:?}");
        }
    }

    #[test]
    fn edit_distance_agrees_with_the_lcs_definition() {
        // A small deterministic generator: no clock, no randomness from outside.
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = |bound: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % bound) as u32
        };
        for round in 0..300 {
            let alphabet = 1 + u64::from(next(6));
            let a: Vec<u32> = (0..next(40)).map(|_| next(alphabet)).collect();
            let b: Vec<u32> = (0..next(40)).map(|_| next(alphabet)).collect();
            let want = a.len() + b.len() - 2 * lcs(&a, &b);
            assert_eq!(edit_distance(&a, &b), want, "round {round}: {a:?} {b:?}");
        }
    }

    #[test]
    fn matching_blocks_follow_difflib() {
        // Expected values are what CPython's difflib returns for these sequences.
        let blocks = |a: &[u32], b: &[u32]| -> Vec<(usize, usize, usize)> {
            matching_blocks(a, b, 10)
                .into_iter()
                .map(|x| (x.a_start, x.b_start, x.len))
                .collect()
        };
        // SequenceMatcher(None, "abxcd", "abcd").get_matching_blocks()
        assert_eq!(
            blocks(&[0, 1, 5, 2, 3], &[0, 1, 2, 3]),
            vec![(0, 0, 2), (3, 2, 2)]
        );
        // SequenceMatcher(None, "qabxcd", "abycdf"): [(1,0,2), (4,3,2)]
        assert_eq!(
            blocks(&[9, 0, 1, 5, 2, 3], &[0, 1, 6, 2, 3, 7]),
            vec![(1, 0, 2), (4, 3, 2)]
        );
        // A moved block: "abcdef" vs "defabc" keeps the first longest match, (0,3,3).
        assert_eq!(
            blocks(&[0, 1, 2, 3, 4, 5], &[3, 4, 5, 0, 1, 2]),
            vec![(0, 3, 3)]
        );
        assert_eq!(blocks(&[], &[1]), vec![]);
    }
}
