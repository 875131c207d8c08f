// OptimizerShardFiles.swift — how each optimizer's state reaches a checkpoint beyond the rank
// files: the distributed optimizer writes one file per (tp, pp, dp) rank with its shard of the
// optimizer state (Adam's moments or SGD's momentum; format in ModelCheckpoint.swift); the
// replicated optimizer's state is in the rank files already.
import Checkpoint
import Foundation

extension DistributedOptimizer {
    /// Writes this data-parallel rank's shard of the moments as distrib_optim_TT_PPP_DDD.h5.
    public func writeShard(into directory: String, parallel: ParallelState) throws {
        let name = CheckpointDirectory.optimizerShardFileName(
            tensorRank: parallel.tensorRank, pipelineRank: parallel.pipelineRank,
            dataRank: parallel.dataRank)
        let f = try HDF5File.create((directory as NSString).appendingPathComponent(name))
        let optimizer = self
        try f.setAttribute("format", string: ModelCheckpoint.format)
        try f.setAttribute("format_version", int: ModelCheckpoint.formatVersion)
        try f.setAttribute("tensor_model_parallel_rank", int: parallel.tensorRank)
        try f.setAttribute("pipeline_model_parallel_rank", int: parallel.pipelineRank)
        try f.setAttribute("data_parallel_rank", int: parallel.dataRank)
        try f.setAttribute("data_parallel_size", int: parallel.layout.data)
        try f.setAttribute("optimizer_step", int: optimizer.step)
        for s in optimizer.segments {
            let spec = chunks[s.chunk].table.specs[s.slot]
            let attrs = [
                "flat_offset": [s.elementOffset], "local_shape": spec.localShape,
                "global_shape": spec.shape, "global_offset": spec.globalOffset,
            ]
            for (name, buffer) in zip(hyper.stateNames, optimizer.state) {
                try f.writeFloats(
                    name + "/" + spec.name, shape: [s.count], data: buffer.base + s.shardOffset, attributes: attrs)
            }
        }
        try f.flush()
    }
}

extension ReplicatedOptimizer {
    public func writeShard(into directory: String, parallel: ParallelState) throws {}
}
