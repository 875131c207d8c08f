// CommunicationProgress.swift — MPI progress during compute. Open MPI advances non-blocking
// operations (pipeline transfers, gradient-bucket reductions) only inside MPI calls, so without
// help they move mostly in the final wait. Whoever has operations outstanding sets `poll` (the
// pipeline executor, the gradient buckets during the last backward); model code calls it at layer
// boundaries, and it tests (MPI_Test) what is outstanding. One training loop runs per process.

public enum CommunicationProgress {
    nonisolated(unsafe) public static var poll: (() -> Void)? = nil
}
