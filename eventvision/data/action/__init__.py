"""Video action recognition data: UCF101, NTU RGB+D 60 (video layout), synthetic videos."""
