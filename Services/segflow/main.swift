print("segflow")
