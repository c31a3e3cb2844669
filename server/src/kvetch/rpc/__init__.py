"""kvetch.rpc"""
