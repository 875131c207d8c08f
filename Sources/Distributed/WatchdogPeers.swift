// WatchdogPeers.swift — how a timed-out rank learns which peers did not arrive. MPI cannot tell (a
// blocked collective says nothing about who is missing, and this program runs MPI single-threaded),
// so every rank's watchdog thread also owns a UDP socket outside MPI. At start the ranks exchange
// its port and this host's IPv4 addresses (one MPI_Allgather); afterwards each watchdog answers
// "where are you?" with the operation it waits in (operation, group, the group's ranks) or
// "computing". A rank that times out asks the group's other members: a peer in the same call has
// arrived; a peer waiting elsewhere did not, and the members of the group it waits on are asked in
// turn, so the message ends at the ranks everything waits on — those that do not answer (stopped,
// hung inside the kernel, unreachable) or are computing.
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

final class WatchdogPeers: @unchecked Sendable {
    /// One rank's answer: the operation it waits in, on which group (and that group's world ranks).
    struct Status: Equatable {
        var operation: String, group: String, members: [Int]
        var encoded: String { "\(operation)\t\(group)\t\(members.map(String.init).joined(separator: ","))" }
        init(operation: String, group: String, members: [Int]) {
            self.operation = operation; self.group = group; self.members = members
        }
        init?(_ text: Substring) {
            let f = text.split(separator: "\t", omittingEmptySubsequences: false)
            guard f.count == 3 else { return nil }
            (operation, group, members) = (
                String(f[0]), String(f[1]), f[2].split(separator: ",").compactMap { Int($0) }
            )
        }
        /// Waiting in the same collective (the same operation on the same group).
        func sameCall(_ other: Status) -> Bool { operation == other.operation && group == other.group }
    }

    static let recordSize = 2 + 1 + 8 * 4
    private let socket: Int32
    let port: UInt16
    /// Every world rank's port and IPv4 addresses (network byte order), once exchanged.
    var peers: [(port: UInt16, addresses: [UInt32])] = []

    init?() {
        let fd = Glibc.socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = INADDR_ANY
        address.sin_port = 0
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let named = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard bound == 0, named == 0 else {
            close(fd)
            return nil
        }
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        socket = fd
        port = UInt16(bigEndian: address.sin_port)
    }

    /// This rank's record for the exchange: port, then up to eight IPv4 addresses of this host.
    var record: [UInt8] {
        var out = [UInt8(port >> 8), UInt8(port & 0xff)]
        let addresses = Array(Self.localAddresses().prefix(8))
        out.append(UInt8(addresses.count))
        for a in addresses { withUnsafeBytes(of: a) { out += $0 } }
        return out + [UInt8](repeating: 0, count: Self.recordSize - out.count)
    }

    func setPeers(_ records: [[UInt8]]) {
        peers = records.map { r in
            let n = min(8, Int(r[2]))
            let addresses = (0..<n).map { i in
                r[(3 + 4 * i)..<(7 + 4 * i)].withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) }
            }
            return (UInt16(r[0]) << 8 | UInt16(r[1]), addresses)
        }
    }

    /// The IPv4 addresses of this host's interfaces, loopback last.
    static func localAddresses() -> [UInt32] {
        var list: UnsafeMutablePointer<ifaddrs>? = nil
        guard getifaddrs(&list) == 0 else { return [] }
        defer { freeifaddrs(list) }
        var found: [UInt32] = [], loopback: [UInt32] = []
        var p = list
        while let entry = p {
            if let a = entry.pointee.ifa_addr, a.pointee.sa_family == sa_family_t(AF_INET) {
                let v4 = a.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_addr.s_addr }
                if UInt32(bigEndian: v4) >> 24 == 127 { loopback.append(v4) } else { found.append(v4) }
            }
            p = entry.pointee.ifa_next
        }
        return found + loopback
    }

    private func send(_ text: String, to port: UInt16, address: UInt32) {
        var to = sockaddr_in()
        to.sin_family = sa_family_t(AF_INET)
        to.sin_port = port.bigEndian
        to.sin_addr.s_addr = address
        let bytes = Array(text.utf8)
        _ = withUnsafePointer(to: &to) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                sendto(socket, bytes, bytes.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
    }

    /// Reads every waiting datagram: queries are answered with `status` (nil: computing), answers
    /// ("A rank status") are returned.
    func drain(rank: Int, status: Status?) -> [(rank: Int, status: Status?)] {
        var answers: [(Int, Status?)] = []
        var buffer = [UInt8](repeating: 0, count: 2048)
        while true {
            var from = sockaddr_in()
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            let n = withUnsafeMutablePointer(to: &from) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    recvfrom(socket, &buffer, buffer.count, 0, $0, &length)
                }
            }
            guard n > 0 else { return answers }
            let text = String(decoding: buffer[0..<n], as: UTF8.self)
            if text == "Q" {
                let reply = "A \(rank) " + (status?.encoded ?? "computing")
                send(reply, to: UInt16(bigEndian: from.sin_port), address: from.sin_addr.s_addr)
            } else if text.hasPrefix("A ") {
                let parts = text.dropFirst(2).split(separator: " ", maxSplits: 1)
                if parts.count == 2, let r = Int(parts[0]) { answers.append((r, Status(parts[1]))) }
            }
        }
    }

    /// Asks `ranks` where they are and collects answers for up to `seconds`, answering queries meanwhile.
    func ask(_ ranks: [Int], rank: Int, status: Status, seconds: Double) -> [Int: Status?] {
        for r in ranks where r < peers.count {
            for address in peers[r].addresses { send("Q", to: peers[r].port, address: address) }
        }
        var answers: [Int: Status?] = [:]
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline && answers.count < ranks.count {
            for (r, s) in drain(rank: rank, status: status) where ranks.contains(r) { answers[r] = s }
            usleep(20_000)
        }
        return answers
    }
}
