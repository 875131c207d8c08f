/* CMPI: Open MPI for Swift. Only static inline getters for the handle macros Swift cannot
   import (Open MPI defines them as casts of addresses of globals), and the atomic flags of shared-
   memory windows. Imported only by Distributed. */
#ifndef CMPI_SHIM_H
#define CMPI_SHIM_H
#include <mpi.h>
#include <stdint.h>
static inline MPI_Comm     mpi_comm_world(void)    { return MPI_COMM_WORLD; }
static inline MPI_Comm     mpi_comm_null(void)     { return MPI_COMM_NULL; }
static inline MPI_Comm     mpi_comm_self(void)     { return MPI_COMM_SELF; }
static inline int          mpi_any_source(void)    { return MPI_ANY_SOURCE; }
static inline int          mpi_any_tag(void)       { return MPI_ANY_TAG; }
static inline int          mpi_thread_multiple(void) { return MPI_THREAD_MULTIPLE; }
static inline MPI_Datatype mpi_float(void)         { return MPI_FLOAT; }
static inline MPI_Datatype mpi_double(void)        { return MPI_DOUBLE; }
static inline MPI_Datatype mpi_int(void)           { return MPI_INT; }
static inline MPI_Datatype mpi_int64(void)         { return MPI_INT64_T; }
static inline MPI_Datatype mpi_byte(void)          { return MPI_BYTE; }
static inline MPI_Op       mpi_sum(void)           { return MPI_SUM; }
static inline MPI_Op       mpi_max(void)           { return MPI_MAX; }
static inline MPI_Op       mpi_min(void)           { return MPI_MIN; }
static inline void *       mpi_in_place(void)      { return MPI_IN_PLACE; }
static inline MPI_Status * mpi_status_ignore(void) { return MPI_STATUS_IGNORE; }
static inline MPI_Errhandler mpi_errors_return(void) { return MPI_ERRORS_RETURN; }
static inline MPI_Info     mpi_info_null(void)     { return MPI_INFO_NULL; }
static inline int          mpi_comm_type_shared(void) { return MPI_COMM_TYPE_SHARED; }
/* Flags in an MPI-3 shared-memory window, read and written by several processes: a store that
   publishes everything written before it (release) and a load that sees it (acquire). */
static inline void    shared_flag_store(int64_t *flag, int64_t value) { __atomic_store_n(flag, value, __ATOMIC_RELEASE); }
static inline int64_t shared_flag_load(const int64_t *flag) { return __atomic_load_n(flag, __ATOMIC_ACQUIRE); }
#endif
