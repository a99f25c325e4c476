using static TorchSharp.torch;
var t = ones(2, 3);
Console.WriteLine(t.sum().item<float>());
foreach (var l in File.ReadLines("/proc/self/maps").Where(l => l.Contains("Torch") || l.Contains("iosshim")).Select(l => l[(l.IndexOf('/'))..]).Distinct()) Console.WriteLine(l);
Console.WriteLine(get_num_threads());
