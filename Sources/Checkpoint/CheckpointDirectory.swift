// CheckpointDirectory.swift — Megatron's checkpoint layout, made atomic:
//     <save>/latest_checkpointed_iteration.txt        the iteration of the newest complete checkpoint
//     <save>/iter_0000020/mp_rank_00_000.h5            one HDF5 file per model-parallel rank (tp, pp)
//     <save>/iter_0000020/distrib_optim_00_000_001.h5  with the distributed optimizer: one optimizer
//                                                      shard per (tp, pp, dp) rank
// A checkpoint is written into `iter_0000020.tmp`, renamed when every file is complete, and only
// then does the pointer move (itself written to a temporary name and renamed). A failure leaves the
// previous checkpoint and pointer untouched and removes the partial directory.
import Foundation

public enum CheckpointError: Error, CustomStringConvertible {
    case notWritable(path: String, reason: String)
    case writeFailed(path: String, reason: String)
    case noCheckpoint(path: String)
    case badPointer(path: String, content: String)
    case missingIteration(path: String)
    case incompatible(path: String, reason: String)

    public var description: String {
        switch self {
        case .notWritable(let p, let r):
            return "checkpoint directory '\(p)' is not writable (\(r)): choose another `save` directory or free space"
        case .writeFailed(let p, let r):
            return
                "writing checkpoint '\(p)' failed: \(r). The partial checkpoint was removed; earlier checkpoints are "
                + "intact. Free disk space or choose another `save` directory"
        case .noCheckpoint(let p):
            return
                "no checkpoint in '\(p)': it has no latest_checkpointed_iteration.txt (train with `save` first, or "
                + "fix `load`)"
        case .badPointer(let p, let c):
            return "'\(p)' should hold an iteration number but holds \"\(c)\"; fix it or point `load` elsewhere"
        case .missingIteration(let p):
            return
                "checkpoint directory '\(p)' named by latest_checkpointed_iteration.txt does not exist; fix the "
                + "pointer file"
        case .incompatible(let p, let r):
            return "checkpoint '\(p)' cannot be loaded: \(r)"
        }
    }
}

public struct CheckpointDirectory: Sendable {
    public let root: String
    public static let pointerName = "latest_checkpointed_iteration.txt"

    public init(root: String) { self.root = root }

    public static func iterationName(_ iteration: Int) -> String { String(format: "iter_%07d", iteration) }

    /// Megatron's per-rank file name: tensor rank (2 digits) and pipeline rank (3 digits).
    public static func rankFileName(tensorRank: Int, pipelineRank: Int) -> String {
        String(format: "mp_rank_%02d_%03d.h5", tensorRank, pipelineRank)
    }

    /// The distributed optimizer's shard of data-parallel rank `dataRank` for model-parallel rank (t, p).
    public static func optimizerShardFileName(tensorRank: Int, pipelineRank: Int, dataRank: Int) -> String {
        String(format: "distrib_optim_%02d_%03d_%03d.h5", tensorRank, pipelineRank, dataRank)
    }

    /// The model files (mp_rank_*.h5) and distributed-optimizer shards (distrib_optim_*.h5) of the
    /// checkpoint directory `dir`, each sorted by name, as full paths.
    public static func listFiles(in dir: String) -> (rankFiles: [String], optimizerShards: [String]) {
        let entries = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.hasSuffix(".h5") }
            .sorted()
        let full = { (names: [String]) in names.map { (dir as NSString).appendingPathComponent($0) } }
        return (
            full(entries.filter { $0.hasPrefix("mp_rank_") }), full(entries.filter { $0.hasPrefix("distrib_optim_") })
        )
    }

    public func iterationPath(_ iteration: Int) -> String {
        (root as NSString).appendingPathComponent(Self.iterationName(iteration))
    }
    public var pointerPath: String { (root as NSString).appendingPathComponent(Self.pointerName) }

    /// Creates the directory if needed and proves a file can be written there (before any training).
    public func checkWritable() throws {
        let fm = FileManager.default
        do { try fm.createDirectory(atPath: root, withIntermediateDirectories: true) } catch {
            throw CheckpointError.notWritable(path: root, reason: "cannot create it: \(Self.reason(error))")
        }
        let probe = (root as NSString).appendingPathComponent(".write-probe-\(getpid())")
        guard fm.createFile(atPath: probe, contents: Data("ok".utf8)) else {
            throw CheckpointError.notWritable(path: root, reason: "cannot create files in it")
        }
        try? fm.removeItem(atPath: probe)
    }

    /// Removes the `iter_*.tmp` directories an interrupted save left behind (a complete checkpoint
    /// is never named so); returns their names.
    public func removeStaleTemporaries() -> [String] {
        let fm = FileManager.default
        let stale = ((try? fm.contentsOfDirectory(atPath: root)) ?? []).filter {
            $0.hasPrefix("iter_") && $0.hasSuffix(".tmp")
        }.sorted()
        for name in stale { try? fm.removeItem(atPath: (root as NSString).appendingPathComponent(name)) }
        return stale
    }

    /// The temporary directory a checkpoint of `iteration` is written into (emptied first).
    public func beginSave(iteration: Int) throws -> String {
        let tmp = iterationPath(iteration) + ".tmp"
        let fm = FileManager.default
        try? fm.removeItem(atPath: tmp)
        do { try fm.createDirectory(atPath: tmp, withIntermediateDirectories: true) } catch {
            throw CheckpointError.writeFailed(path: tmp, reason: Self.reason(error))
        }
        return tmp
    }

    /// Moves a completed temporary directory into place and then updates the pointer.
    public func commitSave(iteration: Int) throws {
        let fm = FileManager.default
        let tmp = iterationPath(iteration) + ".tmp", final = iterationPath(iteration)
        do {
            if fm.fileExists(atPath: final) { try fm.removeItem(atPath: final) }
            try fm.moveItem(atPath: tmp, toPath: final)
            let ptmp = pointerPath + ".tmp"
            guard fm.createFile(atPath: ptmp, contents: Data("\(iteration)\n".utf8)) else {
                throw CheckpointError.writeFailed(path: ptmp, reason: "cannot write the pointer file")
            }
            if rename(ptmp, pointerPath) != 0 {
                throw CheckpointError.writeFailed(path: pointerPath, reason: String(cString: strerror(errno)))
            }
        } catch let e as CheckpointError { throw e } catch {
            throw CheckpointError.writeFailed(path: final, reason: Self.reason(error))
        }
    }

    /// Removes a partial checkpoint after a failed save.
    public func abandonSave(iteration: Int) {
        try? FileManager.default.removeItem(atPath: iterationPath(iteration) + ".tmp")
    }

    /// The iteration named by the pointer file.
    public func latestIteration() throws -> Int {
        guard let data = FileManager.default.contents(atPath: pointerPath) else {
            throw CheckpointError.noCheckpoint(path: root)
        }
        let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard let it = Int(text), it >= 0 else { throw CheckpointError.badPointer(path: pointerPath, content: text) }
        guard FileManager.default.fileExists(atPath: iterationPath(it)) else {
            throw CheckpointError.missingIteration(path: iterationPath(it))
        }
        return it
    }

    static func reason(_ error: Error) -> String {
        let ns = error as NSError
        if let u = ns.userInfo[NSUnderlyingErrorKey] as? NSError, u.domain == NSPOSIXErrorDomain {
            return String(cString: strerror(Int32(u.code)))
        }
        return ns.localizedDescription
    }
}
