pub mod cuda_cases;
