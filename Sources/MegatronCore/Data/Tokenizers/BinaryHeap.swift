// BinaryHeap.swift — the priority queue of the BPE merge loops (SentencePiece's highest-scoring pair,
// tiktoken's lowest-ranked pair): a binary heap whose elements say which of two comes out first.

protocol HeapOrdered {
    /// Whether `self` leaves the heap before `other`.
    func before(_ other: Self) -> Bool
}

struct BinaryHeap<Element: HeapOrdered> {
    private var items: [Element] = []

    mutating func push(_ x: Element) {
        items.append(x)
        var i = items.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            guard items[i].before(items[parent]) else { break }
            items.swapAt(i, parent)
            i = parent
        }
    }

    /// The first element, removed; nil when empty.
    mutating func pop() -> Element? {
        guard let top = items.first else { return nil }
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var i = 0
            while true {
                let (l, r) = (2 * i + 1, 2 * i + 2)
                var best = i
                if l < items.count && items[l].before(items[best]) { best = l }
                if r < items.count && items[r].before(items[best]) { best = r }
                if best == i { break }
                items.swapAt(i, best)
                i = best
            }
        }
        return top
    }
}

/// Packed keys (tiktoken's rank << 32 | start): the smallest first.
extension UInt64: HeapOrdered {
    func before(_ other: UInt64) -> Bool { self < other }
}
