"""kvetch.raft"""
