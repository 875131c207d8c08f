/* CHDF5: HDF5 (serial) for Swift. Only static inline getters for the type and flag macros Swift
   cannot import: they expand to calls (H5open(), H5check()) or to non-concurrency-safe globals.
   Imported only by the Checkpoint module. */
#ifndef CHDF5_SHIM_H
#define CHDF5_SHIM_H
#include <hdf5.h>
static inline hid_t    h5t_native_float(void)   { return H5T_NATIVE_FLOAT; }
static inline hid_t    h5t_native_double(void)  { return H5T_NATIVE_DOUBLE; }
static inline hid_t    h5t_native_int32(void)   { return H5T_NATIVE_INT32; }
static inline hid_t    h5t_native_int64(void)   { return H5T_NATIVE_INT64; }
static inline hid_t    h5t_ieee_f32le(void)     { return H5T_IEEE_F32LE; }
static inline hid_t    h5t_ieee_f64le(void)     { return H5T_IEEE_F64LE; }
static inline hid_t    h5t_std_i32le(void)      { return H5T_STD_I32LE; }
static inline hid_t    h5t_std_i64le(void)      { return H5T_STD_I64LE; }
static inline hid_t    h5t_c_s1(void)           { return H5T_C_S1; }
static inline hid_t    h5p_default(void)        { return H5P_DEFAULT; }
static inline hid_t    h5s_all(void)            { return H5S_ALL; }
static inline hid_t    h5p_dataset_create(void) { return H5P_DATASET_CREATE; }
static inline hid_t    h5p_link_create(void)    { return H5P_LINK_CREATE; }
static inline hid_t    h5p_file_access(void)    { return H5P_FILE_ACCESS; }
static inline unsigned h5f_acc_trunc(void)      { return H5F_ACC_TRUNC; }
static inline unsigned h5f_acc_excl(void)       { return H5F_ACC_EXCL; }
static inline unsigned h5f_acc_rdonly(void)     { return H5F_ACC_RDONLY; }
#endif
